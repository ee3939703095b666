// Package extbroker connects the control plane to an external MQTT broker
// (Mosquitto, EMQX, HiveMQ, VerneMQ...) instead of embedding one, so that
// several control planes can share a clustered broker.
//
// It offers the same operations as the embedded broker (Publish,
// Subscribe, ClearRetained, Healthy) over a paho client that reconnects on
// its own and subscribes again after every connect, so the broker resends
// its retained messages and the gateway rebuilds its state.
package extbroker

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"switchyard/devices"
	"switchyard/internal/pahostore"
)

// Config configures a Client.
type Config struct {
	// URL is the broker: tcp://, ssl://, ws:// or wss://host:port.
	URL      string
	Username string
	Password string
	// ClientID identifies this control plane at the broker; empty means
	// "switchyard-" and a random suffix (so several instances never clash).
	ClientID string
	// Timeout bounds a publish or subscribe; 0 means 10 s.
	Timeout time.Duration
	// Logger receives the client's logs; nil discards them.
	Logger *slog.Logger
}

// Message is an MQTT message as a subscriber sees it.
type Message struct {
	Topic   string
	Payload []byte
	Retain  bool
}

// Errors of a Client.
var (
	// ErrNotConnected is returned while the broker connection is down.
	ErrNotConnected = errors.New("not connected to the external broker")
	// ErrRefused is returned when the broker refuses a subscription.
	ErrRefused = errors.New("refused by the external broker")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("external broker client closed")
)

// Client is a connection to an external broker.
type Client struct {
	c       paho.Client
	url     string
	timeout time.Duration
	log     *slog.Logger

	stop chan struct{}  // closed by Close: ends connectLoop
	wg   sync.WaitGroup // connectLoop

	mu   sync.Mutex               // guards subs, seen, gen
	subs map[string]func(Message) // filter → handler, subscribed again on every connect
	// seen holds the topics that may hold a retained message, for
	// ClearRetained: each with the gen of the last message on it, so a
	// clear forgets a topic only if nothing arrived on it meanwhile. An
	// empty payload (a clear, ours or anyone's) removes the topic.
	seen map[string]uint64
	gen  uint64

	closeOnce sync.Once
}

// ValidateURL checks a broker URL.
func ValidateURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("broker url %q: %w", raw, err)
	}
	switch u.Scheme {
	case "tcp", "ssl", "tls", "ws", "wss", "mqtt", "mqtts":
	default:
		return fmt.Errorf("broker url %q: scheme must be tcp://, ssl://, ws:// or wss://", raw)
	}
	if u.Host == "" {
		return fmt.Errorf("broker url %q: no host", raw)
	}
	return nil
}

// New returns a client; Start connects it.
func New(cfg Config) (*Client, error) {
	if err := ValidateURL(cfg.URL); err != nil {
		return nil, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ClientID == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		cfg.ClientID = "switchyard-" + hex.EncodeToString(b)
	}
	x := &Client{
		url:     cfg.URL,
		timeout: cfg.Timeout,
		log:     cfg.Logger,
		subs:    map[string]func(Message){},
		seen:    map[string]uint64{},
		stop:    make(chan struct{}),
	}
	o := paho.NewClientOptions().
		AddBroker(cfg.URL).
		SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).
		SetPassword(cfg.Password).
		SetCleanSession(true).
		SetAutoReconnect(true).    // after the first connect; connectLoop does the first
		SetStore(pahostore.Nop{}). // no resend after a reconnect: see pahostore (a command in flight times out)
		SetConnectTimeout(cfg.Timeout).
		SetMaxReconnectInterval(10 * time.Second).
		SetKeepAlive(10 * time.Second).
		SetOrderMatters(true). // in the order the broker sent them (a board's offline before its online); handlers only queue, they never block
		SetOnConnectHandler(x.onConnect).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			x.log.Warn("external broker connection lost; reconnecting", "url", x.url, "err", err)
		})
	x.c = paho.NewClient(o)
	return x, nil
}

// Start connects in the background; the client keeps retrying until it
// reaches the broker (Healthy reports the state), logging why it cannot
// (a refused password, a broker that is down) each time the reason changes.
func (x *Client) Start() {
	x.log.Info("connecting to the external broker", "url", x.url)
	x.wg.Add(1)
	go x.connectLoop() // ends once connected (paho reconnects from then on) or at Close
}

// connectLoop tries to connect, 1 s apart at first and at most 10 s apart.
// (paho's own ConnectRetry retries without saying why it failed.)
func (x *Client) connectLoop() {
	defer x.wg.Done()
	delay := time.Second
	last := ""
	for {
		tok := x.c.Connect()
		select {
		case <-tok.Done():
		case <-x.stop:
			return
		}
		err := tok.Error()
		if err == nil {
			return
		}
		if msg := err.Error(); msg != last {
			x.log.Error("cannot connect to the external broker; retrying", "url", x.url, "err", err)
			last = msg
		} else {
			x.log.Debug("cannot connect to the external broker; retrying", "url", x.url, "err", err)
		}
		select {
		case <-time.After(delay):
		case <-x.stop:
			return
		}
		delay = min(2*delay, 10*time.Second)
	}
}

// onConnect subscribes every filter again: the broker resends retained
// messages, from which the gateway rebuilds its state.
func (x *Client) onConnect(c paho.Client) {
	x.log.Info("connected to the external broker", "url", x.url)
	x.mu.Lock()
	subs := make(map[string]func(Message), len(x.subs))
	for f, fn := range x.subs {
		subs[f] = fn
	}
	x.mu.Unlock()
	for f, fn := range subs {
		// paho calls onConnect on its own goroutine; waiting here is fine
		if err := x.subscribe(c, f, fn); err != nil {
			x.log.Error("cannot subscribe again after connecting", "err", err)
		}
	}
}

// subscribe subscribes filter and waits for the broker's answer.
func (x *Client) subscribe(c paho.Client, filter string, fn func(Message)) error {
	tok := c.Subscribe(filter, 1, func(_ paho.Client, m paho.Message) {
		x.mu.Lock()
		if len(m.Payload()) == 0 {
			delete(x.seen, m.Topic())
		} else {
			x.gen++
			x.seen[m.Topic()] = x.gen
		}
		x.mu.Unlock()
		fn(Message{Topic: m.Topic(), Payload: m.Payload(), Retain: m.Retained()})
	})
	if !tok.WaitTimeout(x.timeout) {
		return fmt.Errorf("subscribe %s: timed out after %v", filter, x.timeout)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("subscribe %s: %w", filter, err)
	}
	if st, ok := tok.(*paho.SubscribeToken); ok {
		for _, qos := range st.Result() {
			if qos >= 0x80 { // SUBACK failure (an ACL, say)
				return fmt.Errorf("subscribe %s: %w", filter, ErrRefused)
			}
		}
	}
	return nil
}

// Subscribe delivers every message matching filter to fn, now and after
// every reconnect (retained messages included). fn runs on paho's
// goroutines: it must copy what it keeps and must not block.
//
// While connected it waits for the broker and returns its refusal, a
// failure or a timeout; while not yet connected it returns nil and the
// connect subscribes (logging a failure). Either way the filter is kept
// and subscribed again on every connect. After Close it returns
// ErrClosed.
func (x *Client) Subscribe(filter string, fn func(Message)) error {
	select {
	case <-x.stop:
		return fmt.Errorf("subscribe %s: %w", filter, ErrClosed)
	default:
	}
	x.mu.Lock()
	x.subs[filter] = fn
	x.mu.Unlock()
	if !x.c.IsConnectionOpen() {
		return nil
	}
	return x.subscribe(x.c, filter, fn)
}

// Publish publishes a message and waits for the broker's acknowledgement
// (QoS 1) or the timeout.
func (x *Client) Publish(topic string, payload []byte, retain bool, qos byte) error {
	if !x.c.IsConnectionOpen() {
		return fmt.Errorf("publish %s: %w", topic, ErrNotConnected)
	}
	tok := x.c.Publish(topic, qos, retain, payload)
	if !tok.WaitTimeout(x.timeout) {
		return fmt.Errorf("publish %s: timed out after %v", topic, x.timeout)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	return nil
}

// ClearRetained publishes an empty retained message to every topic seen
// that matches filter. It returns how many it cleared.
//
// A topic is forgotten only once the broker acknowledged its clear (and
// no message arrived on it meanwhile): at the first failed publish it
// stops and returns the error, and the topics not cleared are kept for
// the next call.
func (x *Client) ClearRetained(filter string) (int, error) {
	type seenAt struct {
		topic string
		gen   uint64
	}
	x.mu.Lock()
	var topics []seenAt
	for t, g := range x.seen {
		if devices.MatchFilter(filter, t) {
			topics = append(topics, seenAt{t, g})
		}
	}
	x.mu.Unlock()
	for i, t := range topics {
		if err := x.Publish(t.topic, nil, true, 1); err != nil {
			return i, err // names the topic
		}
		x.mu.Lock()
		if g, ok := x.seen[t.topic]; ok && g == t.gen {
			delete(x.seen, t.topic)
		}
		x.mu.Unlock()
	}
	return len(topics), nil
}

// Healthy returns nil while connected to the broker.
func (x *Client) Healthy() error {
	if !x.c.IsConnectionOpen() {
		return ErrNotConnected
	}
	return nil
}

// Close disconnects. It is safe to call more than once.
func (x *Client) Close() error {
	x.closeOnce.Do(func() {
		close(x.stop)
		x.wg.Wait()
		x.c.Disconnect(250)
	})
	return nil
}
