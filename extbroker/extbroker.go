// Package extbroker connects the control plane to an external MQTT broker
// (Mosquitto, EMQX, HiveMQ, VerneMQ, NATS...) instead of embedding one, so
// that several control planes can share a clustered broker.
//
// It offers the same operations as the embedded broker (Publish,
// Subscribe, ClearRetained, Healthy). The broker may be a list of URLs, a
// cluster's nodes: the client connects to the first, and after a lost
// connection tries the next one at once (wrapping around), each attempt
// bounded by ConnectTimeout; only after a whole round of the list failed
// does it wait (1 s, doubling to 10 s) before the next round. paho's own
// reconnect always starts again from its first server, so the client runs
// its own loop with a fresh paho client per attempt. After every connect
// it subscribes every filter again, so the broker resends its retained
// messages and the gateway rebuilds its state.
package extbroker

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"switchyard/devices"
	"switchyard/internal/pahostore"
)

// Config configures a Client.
type Config struct {
	// URL is the broker: tcp://, ssl://, ws:// or wss://host:port, or
	// several such URLs separated by commas (see ParseURLs).
	URL      string
	Username string
	Password string
	// ClientID identifies this control plane at the broker; empty means
	// "switchyard-" and a random suffix (so several instances never clash).
	ClientID string
	// Timeout bounds a publish or subscribe; 0 means 10 s.
	Timeout time.Duration
	// ConnectTimeout bounds one connection attempt, from the dial to the
	// broker's answer to CONNECT; 0 means 5 s, and more than 5 s is 5 s.
	ConnectTimeout time.Duration
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

// maxConnectTimeout bounds ConnectTimeout: a dead node in a list must not
// hold the client long before it tries the next.
const maxConnectTimeout = 5 * time.Second

// Client is a connection to an external broker.
type Client struct {
	urls           []string
	cfg            Config
	timeout        time.Duration
	connectTimeout time.Duration
	log            *slog.Logger

	stop      chan struct{}  // closed by Close: ends run
	wg        sync.WaitGroup // run
	startOnce sync.Once

	mu sync.Mutex // guards cur, subs, seen, gen
	// cur is the paho client of the connection up now (its CONNECT
	// answered), nil while there is none. Only run sets it.
	cur  paho.Client
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

// ParseURLs splits a comma-separated list of broker URLs, trims the
// spaces around each and validates each (ValidateURL); the error names the
// bad one. An empty list, or an empty entry, is an error.
func ParseURLs(list string) ([]string, error) {
	if strings.TrimSpace(list) == "" {
		return nil, errors.New("no broker url")
	}
	var urls []string
	for i, u := range strings.Split(list, ",") {
		u = strings.TrimSpace(u)
		if u == "" {
			return nil, fmt.Errorf("broker url %d of the list %q is empty", i+1, list)
		}
		if err := ValidateURL(u); err != nil {
			return nil, err
		}
		urls = append(urls, u)
	}
	return urls, nil
}

// New returns a client; Start connects it.
func New(cfg Config) (*Client, error) {
	urls, err := ParseURLs(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.ConnectTimeout <= 0 || cfg.ConnectTimeout > maxConnectTimeout {
		cfg.ConnectTimeout = maxConnectTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ClientID == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		cfg.ClientID = "switchyard-" + hex.EncodeToString(b)
	}
	return &Client{
		urls:           urls,
		cfg:            cfg,
		timeout:        cfg.Timeout,
		connectTimeout: cfg.ConnectTimeout,
		log:            cfg.Logger,
		subs:           map[string]func(Message){},
		seen:           map[string]uint64{},
		stop:           make(chan struct{}),
	}, nil
}

// ClientID is the client id the client connects with.
func (x *Client) ClientID() string { return x.cfg.ClientID }

// Start connects in the background; the client keeps (re)connecting until
// Close (Healthy reports the state), logging why it cannot (a refused
// password, a broker that is down) each time the reason changes.
func (x *Client) Start() {
	select {
	case <-x.stop:
		return // closed
	default:
	}
	x.startOnce.Do(func() {
		x.log.Info("connecting to the external broker", "urls", strings.Join(x.urls, ","), "client_id", x.cfg.ClientID)
		x.wg.Add(1)
		go x.run() // ends at Close
	})
}

// run connects, to the next URL of the list each time, and waits for the
// connection to end, until Close. After len(urls) failed attempts in a
// row (a whole round) it waits before the next, 1 s at first and at most
// 10 s; a lost connection starts a new round at once, at the next URL.
func (x *Client) run() {
	defer x.wg.Done()
	next, failed := 0, 0
	delay := time.Second
	lastErr := map[string]string{} // by URL: the error last logged at Error level
	for {
		u := x.urls[next]
		next = (next + 1) % len(x.urls)
		c, lost, err := x.connect(u)
		if errors.Is(err, ErrClosed) {
			return
		}
		if err != nil {
			if msg := err.Error(); msg != lastErr[u] {
				x.log.Error("cannot connect to the external broker; retrying", "url", u, "err", err)
				lastErr[u] = msg
			} else {
				x.log.Debug("cannot connect to the external broker; retrying", "url", u, "err", err)
			}
			if failed++; failed%len(x.urls) == 0 {
				select {
				case <-time.After(delay):
				case <-x.stop:
					return
				}
				delay = min(2*delay, 10*time.Second)
			}
			continue
		}
		failed, delay = 0, time.Second
		clear(lastErr)
		x.log.Info("connected to the external broker", "url", u)
		x.connected(c)
		select {
		case err := <-lost:
			x.setCur(nil)
			if len(x.urls) > 1 {
				x.log.Warn("external broker connection lost; trying the next broker", "url", u, "next", x.urls[next], "err", err)
			} else {
				x.log.Warn("external broker connection lost; reconnecting", "url", u, "err", err)
			}
		case <-x.stop:
			x.setCur(nil)
			c.Disconnect(250)
			return
		}
	}
}

// connect makes one attempt at u with a fresh paho client; lost receives
// the error that ends the connection. At Close it abandons the attempt
// (paho cannot: the client dials itself and closes the connection) and
// returns ErrClosed.
func (x *Client) connect(u string) (paho.Client, <-chan error, error) {
	lost := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()        // the dial is over by then: a connection outlives ctx
	var connMu sync.Mutex // guards conn and the cancel at Close
	var conn net.Conn
	open := func(u *url.URL, o paho.ClientOptions) (net.Conn, error) {
		c, err := x.dial(ctx, u, o)
		connMu.Lock()
		defer connMu.Unlock()
		if ctx.Err() != nil { // Close came first
			if c != nil {
				c.Close()
			}
			return nil, ErrClosed
		}
		conn = c
		return c, err
	}
	o := paho.NewClientOptions().
		SetCustomOpenConnectionFn(open).
		AddBroker(u).
		SetClientID(x.cfg.ClientID).
		SetUsername(x.cfg.Username).
		SetPassword(x.cfg.Password).
		SetCleanSession(true).
		SetProtocolVersion(4).   // no second try with 3.1: it would double the wait on a silent broker
		SetAutoReconnect(false). // run reconnects, to the next URL
		SetStore(pahostore.Nop{}).
		SetConnectTimeout(x.connectTimeout).
		SetKeepAlive(10 * time.Second).
		SetPingTimeout(x.connectTimeout).
		SetOrderMatters(false). // handlers only queue; they never block
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			select {
			case lost <- err:
			default: // one is enough
			}
		})
	c := paho.NewClient(o)
	tok := c.Connect()
	select {
	case <-tok.Done():
	case <-x.stop:
		connMu.Lock()
		cancel() // a dial in progress
		if conn != nil {
			conn.Close() // a CONNECT waiting for its answer
		}
		connMu.Unlock()
		<-tok.Done()
		if tok.Error() == nil {
			c.Disconnect(0)
		}
		return nil, nil, ErrClosed
	}
	if err := tok.Error(); err != nil {
		return nil, nil, err
	}
	return c, lost, nil
}

// dial opens the network connection to u for paho, as paho would (but
// without a proxy from the environment), cancelled with ctx.
func (x *Client) dial(ctx context.Context, u *url.URL, o paho.ClientOptions) (net.Conn, error) {
	d := &net.Dialer{Timeout: x.connectTimeout}
	switch u.Scheme {
	case "tcp", "mqtt":
		return d.DialContext(ctx, "tcp", u.Host)
	case "ssl", "tls", "mqtts":
		return (&tls.Dialer{NetDialer: d, Config: o.TLSConfig}).DialContext(ctx, "tcp", u.Host)
	case "ws", "wss":
		du := *u
		du.User = nil // gorilla refuses URLs with user info
		var tc *tls.Config
		if u.Scheme == "wss" {
			tc = o.TLSConfig
		}
		return paho.NewWebsocket(du.String(), tc, x.connectTimeout, o.HTTPHeaders, o.WebsocketOptions)
	}
	return nil, fmt.Errorf("broker url %s: unknown scheme", u.Redacted())
}

// setCur sets the connection up now.
func (x *Client) setCur(c paho.Client) {
	x.mu.Lock()
	x.cur = c
	x.mu.Unlock()
}

// current returns the connection up now, nil if none.
func (x *Client) current() paho.Client {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.cur
}

// connected makes c the connection and subscribes every filter again: the
// broker resends retained messages, from which the gateway rebuilds its
// state. A Subscribe meanwhile either is in the filters read here or sees
// c (both under mu), so each filter is subscribed once.
func (x *Client) connected(c paho.Client) {
	x.mu.Lock()
	x.cur = c
	subs := make(map[string]func(Message), len(x.subs))
	for f, fn := range x.subs {
		subs[f] = fn
	}
	x.mu.Unlock()
	for f, fn := range subs {
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
	c := x.cur
	x.mu.Unlock()
	if c == nil {
		return nil
	}
	return x.subscribe(c, filter, fn)
}

// Publish publishes a message and waits for the broker's acknowledgement
// (QoS 1) or the timeout.
func (x *Client) Publish(topic string, payload []byte, retain bool, qos byte) error {
	c := x.current()
	if c == nil || !c.IsConnectionOpen() {
		return fmt.Errorf("publish %s: %w", topic, ErrNotConnected)
	}
	tok := c.Publish(topic, qos, retain, payload)
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

// Healthy returns nil while connected to the broker: its CONNECT
// answered, the connection not lost since. A TCP connection whose CONNECT
// the broker has not answered is not healthy.
func (x *Client) Healthy() error {
	if c := x.current(); c == nil || !c.IsConnectionOpen() {
		return ErrNotConnected
	}
	return nil
}

// Close disconnects, abandoning a connection attempt in progress. It is
// safe to call more than once.
func (x *Client) Close() error {
	x.closeOnce.Do(func() {
		close(x.stop)
		x.wg.Wait()
	})
	return nil
}
