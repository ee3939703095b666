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
// its own loop with a fresh paho client per attempt.
//
// A connection counts as working (Healthy) only once the broker granted
// every filter and answered a probe: a small QoS 1 message on a topic of
// the client's own (Config.ProbeTopic), published and received back, the
// path a command to a board takes. While connected the probe goes out
// every ProbeInterval; a refused or unanswered subscription, or a probe
// not back within ProbeTimeout, ends the connection and the client tries
// the next URL, as after a lost one. A clustered broker can keep a
// client's TCP connection, and answer its pings, while it cannot deliver
// anything (NATS without a JetStream quorum): only the probe tells.
//
// After every connect the client subscribes every filter, so the broker
// resends its retained messages and the gateway rebuilds its state; and
// once more Config.Resubscribe later, since a clustered broker can lose a
// retained message published while the subscription was being set up
// (NATS does). A SUBSCRIBE with an identical filter replaces the
// subscription and the broker resends the matching retained messages
// (MQTT 3.1.1, 3.8.4), marked retained: the consumer drops what it already
// holds.
//
// The filters are subscribed at QoS 0, the probe at QoS 1. The session is
// clean, so QoS 1 would only guard against a loss on the connection itself,
// after which every filter is subscribed again and the retained state
// resent anyway; and on NATS every QoS 1 subscription is a replicated
// JetStream consumer, and after a node died a board's new LED state once
// did not reach a control plane for 30 s while its probe and the boards'
// counts (QoS 0: core NATS) went through (TestNatsCluster under CI). At QoS 0
// the broker delivers through its core path, which recovers with the
// connection. The probe still tests the QoS 1 path, the one a command to a
// board takes.
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
	"strconv"
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
	// ProbeTopic is the topic of the client's probe: it subscribes it at
	// QoS 1 and publishes small QoS 1 messages on it, so the broker user
	// needs both rights on it. Empty means the default prefix's
	// devices.Topics.Probe(ClientID), switchyard/probe/<client id>.
	ProbeTopic string
	// ProbeInterval is how often a connection is probed; 0 means 5 s.
	ProbeInterval time.Duration
	// ProbeTimeout bounds the wait for a probe to come back; 0 means 5 s.
	ProbeTimeout time.Duration
	// Resubscribe is how long after each connect every filter is
	// subscribed once more (see the package comment); 0 means 5 s, and a
	// negative value never.
	Resubscribe time.Duration
	// Logger receives the client's logs; nil discards them.
	Logger *slog.Logger
}

// Message is an MQTT message as a subscriber sees it.
type Message struct {
	Topic   string
	Payload []byte
	// Retain is set on a retained message the broker sent because a
	// subscription was made (the board's state as stored, maybe sent
	// before), not on one published while subscribed.
	Retain bool
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

// errNotWorking ends a connection whose probe did not come back; errLost
// one that the broker or the network closed.
var (
	errNotWorking = errors.New("external broker not working")
	errLost       = errors.New("connection lost")
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
	// echo takes the probes coming back, by number; the probe handler
	// never blocks (a probe that finds it full is late anyway).
	echo chan uint64
	// drop takes a subscription that failed on the connection up now,
	// from Subscribe, for run to end that connection (see fail).
	drop     chan failed
	probeSeq uint64 // the number of the last probe sent; only run uses it
	// probeRefusedLogged: the probe topic's refusal was logged; only run
	// uses it.
	probeRefusedLogged bool
	// probeGranted: some connection had the probe topic granted; only run
	// uses it. A refusal after that is no ACL but a broker that cannot
	// serve QoS 1 now (a NATS cluster electing leaders, or without a
	// quorum), and fails the connection like any refused filter.
	probeGranted bool

	mu sync.Mutex // guards cur, working, subs, seen, gen
	// cur is the paho client of the connection up now, set once the broker
	// granted every filter (its CONNECT answered), nil while there is none.
	// Only run sets it.
	cur paho.Client
	// working is set once cur answered a probe; cleared with cur.
	working bool
	subs    map[string]*sub // by filter, subscribed again on every connect
	// seen holds the topics that may hold a retained message, for
	// ClearRetained: each with the gen of the last message on it, so a
	// clear forgets a topic only if nothing arrived on it meanwhile. An
	// empty payload (a clear, ours or anyone's) removes the topic.
	seen map[string]uint64
	gen  uint64

	closeOnce sync.Once
}

// sub is a subscription: a new one for every Subscribe, so that a connect
// that subscribed one knows whether Subscribe replaced it meanwhile.
type sub struct {
	filter string
	fn     func(Message)
}

// failed is a subscription that failed on connection c.
type failed struct {
	c   paho.Client
	err error
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
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = 5 * time.Second
	}
	if cfg.ProbeTimeout <= 0 {
		cfg.ProbeTimeout = 5 * time.Second
	}
	if cfg.Resubscribe == 0 {
		cfg.Resubscribe = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ClientID == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		cfg.ClientID = "switchyard-" + hex.EncodeToString(b)
	}
	if cfg.ProbeTopic == "" {
		cfg.ProbeTopic = devices.MustTopics(devices.DefaultPrefix).Probe(cfg.ClientID)
	}
	return &Client{
		urls:           urls,
		cfg:            cfg,
		timeout:        cfg.Timeout,
		connectTimeout: cfg.ConnectTimeout,
		log:            cfg.Logger,
		subs:           map[string]*sub{},
		seen:           map[string]uint64{},
		stop:           make(chan struct{}),
		echo:           make(chan uint64, 8),
		drop:           make(chan failed, 1),
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
		x.log.Info("connecting to the external broker", "urls", strings.Join(x.urls, ","),
			"client_id", x.cfg.ClientID, "probe_topic", x.cfg.ProbeTopic)
		x.wg.Add(1)
		go x.run() // ends at Close
	})
}

// run connects, to the next URL of the list each time, makes the
// connection ready (every filter granted, a probe answered) and serves it
// until it ends, until Close. After len(urls) failed attempts in a row (a
// whole round) it waits before the next, 1 s at first and at most 10 s; a
// connection that worked and ended starts a new round at once, at the
// next URL.
func (x *Client) run() {
	defer x.wg.Done()
	next, failures := 0, 0
	delay := time.Second
	lastErr := map[string]string{} // by URL: the error last logged at Error level
	for {
		u := x.urls[next]
		next = (next + 1) % len(x.urls)
		c, lost, err := x.connect(u)
		probed := false
		if err == nil {
			if probed, err = x.ready(c, lost); err != nil {
				x.setCur(nil)
				x.disconnect(c)
			}
		}
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
			if failures++; failures%len(x.urls) == 0 {
				select {
				case <-time.After(delay):
				case <-x.stop:
					return
				}
				delay = min(2*delay, 10*time.Second)
			}
			continue
		}
		failures, delay = 0, time.Second
		clear(lastErr)
		x.log.Info("connected to the external broker", "url", u)
		err = x.serve(c, u, lost, probed)
		x.setCur(nil)
		x.disconnect(c)
		if errors.Is(err, ErrClosed) {
			return
		}
		what := "external broker connection not working" // a probe or a subscription not answered, or refused
		if errors.Is(err, errLost) {
			what = "external broker connection lost"
		}
		if len(x.urls) > 1 {
			x.log.Warn(what+"; trying the next broker", "url", u, "next", x.urls[next], "err", err)
		} else {
			x.log.Warn(what+"; reconnecting", "url", u, "err", err)
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
		SetOrderMatters(true). // in the order the broker sent them (a board's offline before its online); handlers only queue, they never block
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			select {
			case lost <- fmt.Errorf("%w: %w", errLost, err):
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

// disconnect ends connection c, sending DISCONNECT if the broker still
// listens (a clustered broker then forgets the session at once), waiting
// 100 ms at most.
func (x *Client) disconnect(c paho.Client) {
	if c.IsConnectionOpen() {
		c.Disconnect(100)
	}
}

// setCur sets the connection up now (nil: none), not working yet.
func (x *Client) setCur(c paho.Client) {
	x.mu.Lock()
	x.cur, x.working = c, false
	x.mu.Unlock()
}

// current returns the connection up now, nil if none.
func (x *Client) current() paho.Client {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.cur
}

// ready subscribes the probe topic and every filter on c, a new
// connection, makes c the connection up now, and probes it: it works
// (Healthy) once the probe came back. A refusal, a timeout or a lost
// connection is an error (the caller drops c). A Subscribe meanwhile
// either is among the subscriptions read here or sees cur set (both under
// mu), so every filter is subscribed on c.
//
// A broker that refuses the probe topic alone (an ACL written before the
// probe existed) while it grants every filter is not an error: the
// connection works unprobed (probed false), judged by the connection
// alone, and serve asks for the probe topic again at every
// ProbeInterval. Once the topic was granted, on any connection, a refusal
// is an error (see probeGranted): a NATS node that lost its quorum
// refuses QoS 1 subscriptions, and was taken for an ACL (TestNatsCluster,
// kill two nodes, under CI).
func (x *Client) ready(c paho.Client, lost <-chan error) (probed bool, err error) {
	probed = true
	if err := x.subscribe(c, x.cfg.ProbeTopic, x.probeBack, lost); err != nil {
		if !errors.Is(err, ErrRefused) || x.probeGranted {
			return false, err
		}
		probed = false
	} else {
		x.probeGranted = true
	}
	done := map[*sub]bool{}
	for {
		x.mu.Lock()
		var todo []*sub
		for _, s := range x.subs {
			if !done[s] {
				todo = append(todo, s)
			}
		}
		if len(todo) == 0 {
			x.cur = c
			x.mu.Unlock()
			break
		}
		x.mu.Unlock()
		for _, s := range todo {
			if err := x.subscribe(c, s.filter, x.deliver(s.fn), lost); err != nil {
				return false, err
			}
			done[s] = true
		}
	}
	if !probed {
		if !x.probeRefusedLogged {
			x.log.Warn("the external broker refuses the probe topic: /healthz judges the connection alone and cannot see a broker that stops delivering (allow this client to publish and subscribe the topic)",
				"probe_topic", x.cfg.ProbeTopic)
			x.probeRefusedLogged = true
		}
		x.setWorking(c, true)
		return false, nil
	}
	if err := x.probe(c, lost); err != nil {
		return true, err
	}
	x.setWorking(c, true)
	return true, nil
}

// serve keeps c, the connection up now, until it ends: subscribing
// every filter once more Resubscribe after the connect, and probing it
// every ProbeInterval. A probe not back within ProbeTimeout makes the
// connection not working (Healthy fails) at once; if nothing comes back
// within giveUp × ProbeTimeout of that probe, the connection ends and run
// tries the next URL. The grace is for a cluster electing new leaders
// after losing a node: every node stops delivering for a few seconds
// then, and leaving one for another would only cost a new session set up
// in the middle of the election. serve returns why the connection ended:
// ErrClosed at Close, errLost, errNotWorking, or a subscription's failure
// (here or in Subscribe). An unprobed connection (see ready) asks for the
// probe topic again at every ProbeInterval and is probed once granted.
func (x *Client) serve(c paho.Client, u string, lost <-chan error, probed bool) error {
	tick := time.NewTicker(x.cfg.ProbeInterval)
	defer tick.Stop()
	var again <-chan time.Time
	if x.cfg.Resubscribe > 0 {
		t := time.NewTimer(x.cfg.Resubscribe)
		defer t.Stop()
		again = t.C
	}
	late := time.NewTimer(time.Hour) // the probe pending is late: see above
	late.Stop()
	defer late.Stop()
	var pending uint64 // the first probe not answered; 0: none
	var since time.Time
	for {
		select {
		case err := <-lost:
			return err
		case f := <-x.drop:
			if f.c == c { // else a connection before
				return f.err
			}
		case <-again:
			again = nil
			if err := x.resubscribe(c, lost); err != nil {
				return err
			}
		case <-tick.C:
			if !probed {
				err := x.subscribe(c, x.cfg.ProbeTopic, x.probeBack, lost)
				if err != nil && !errors.Is(err, ErrRefused) {
					return err
				}
				if probed = err == nil; !probed {
					continue
				}
				x.probeGranted = true
				x.log.Info("the external broker grants the probe topic now: probing", "url", u, "probe_topic", x.cfg.ProbeTopic)
			}
			x.probeSeq++
			// Its PUBACK proves little (a clustered broker can take a
			// message it cannot deliver): only its coming back counts.
			c.Publish(x.cfg.ProbeTopic, 1, false, strconv.FormatUint(x.probeSeq, 10))
			if pending == 0 {
				pending, since = x.probeSeq, time.Now()
				late.Reset(x.cfg.ProbeTimeout)
			}
		case n := <-x.echo:
			if pending == 0 || n < pending {
				continue // one answered already
			}
			pending = 0
			late.Stop()
			if x.setWorking(c, true) {
				x.log.Info("external broker working again: probe answered", "url", u)
			}
		case <-late.C:
			if pending == 0 {
				continue
			}
			if x.setWorking(c, false) {
				x.log.Error(fmt.Sprintf("external broker not working: probe not answered in %v", x.cfg.ProbeTimeout), "url", u)
				late.Reset(time.Until(since.Add(giveUp * x.cfg.ProbeTimeout)))
				continue
			}
			return fmt.Errorf("%w: probe not answered in %v", errNotWorking, time.Since(since).Round(time.Second))
		case <-x.stop:
			return ErrClosed
		}
	}
}

// giveUp × ProbeTimeout after a probe that did not come back, a
// connection ends (see serve).
const giveUp = 3

// setWorking sets whether c, the connection up now, works, and reports
// whether that changed it.
func (x *Client) setWorking(c paho.Client, working bool) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.cur != c || x.working == working {
		return false
	}
	x.working = working
	return true
}

// resubscribe subscribes every filter on c again: the broker resends its
// retained messages.
func (x *Client) resubscribe(c paho.Client, lost <-chan error) error {
	x.mu.Lock()
	subs := make([]*sub, 0, len(x.subs))
	for _, s := range x.subs {
		subs = append(subs, s)
	}
	x.mu.Unlock()
	for _, s := range subs {
		if err := x.subscribe(c, s.filter, x.deliver(s.fn), lost); err != nil {
			return err
		}
	}
	return nil
}

// probe publishes the next probe on c and waits for it to come back,
// at most ProbeTimeout: a new connection's first. Only run calls it.
func (x *Client) probe(c paho.Client, lost <-chan error) error {
	x.probeSeq++
	want := x.probeSeq
	timer := time.NewTimer(x.cfg.ProbeTimeout)
	defer timer.Stop()
	c.Publish(x.cfg.ProbeTopic, 1, false, strconv.FormatUint(want, 10)) // its error comes through lost, or as the timeout
	for {
		select {
		case n := <-x.echo:
			if n == want {
				return nil
			} // else one that came back late
		case <-timer.C:
			return fmt.Errorf("%w: probe not answered in %v", errNotWorking, x.cfg.ProbeTimeout)
		case err := <-lost:
			return err
		case <-x.stop:
			return ErrClosed
		}
	}
}

// probeBack is the handler of the probe topic: it hands the probe's
// number to probe, never blocking.
func (x *Client) probeBack(m Message) {
	n, err := strconv.ParseUint(string(m.Payload), 10, 64)
	if err != nil {
		return // not ours
	}
	select {
	case x.echo <- n:
	default:
	}
}

// deliver returns the paho handler of a subscription: it notes the topic
// for ClearRetained and hands the message to fn.
func (x *Client) deliver(fn func(Message)) func(Message) {
	return func(m Message) {
		x.mu.Lock()
		if len(m.Payload) == 0 {
			delete(x.seen, m.Topic)
		} else {
			x.gen++
			x.seen[m.Topic] = x.gen
		}
		x.mu.Unlock()
		fn(m)
	}
}

// subscribe subscribes filter on c (at QoS 1 for the probe, 0 for the
// others: see the package comment) and waits for the broker's answer, at
// most Timeout. A connection lost meanwhile (lost, nil when the caller does
// not watch it) or Close ends the wait.
func (x *Client) subscribe(c paho.Client, filter string, fn func(Message), lost <-chan error) error {
	qos := byte(0)
	if filter == x.cfg.ProbeTopic {
		qos = 1
	}
	tok := c.Subscribe(filter, qos, func(_ paho.Client, m paho.Message) {
		fn(Message{Topic: m.Topic(), Payload: m.Payload(), Retain: m.Retained()})
	})
	timer := time.NewTimer(x.timeout)
	defer timer.Stop()
	select {
	case <-tok.Done():
	case <-timer.C:
		return fmt.Errorf("subscribe %s: timed out after %v", filter, x.timeout)
	case err := <-lost:
		return fmt.Errorf("subscribe %s: %w", filter, err)
	case <-x.stop:
		return fmt.Errorf("subscribe %s: %w", filter, ErrClosed)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("subscribe %s: %w", filter, err)
	}
	if st, ok := tok.(*paho.SubscribeToken); ok {
		for _, qos := range st.Result() {
			if qos >= 0x80 { // SUBACK failure (an ACL, a cluster electing leaders)
				return fmt.Errorf("subscribe %s: %w", filter, ErrRefused)
			}
		}
	}
	return nil
}

// fail hands run a subscription that failed on c, the connection up now,
// replacing one left from an earlier connection.
func (x *Client) fail(c paho.Client, err error) {
	for {
		select {
		case x.drop <- failed{c, err}:
			return
		default:
		}
		select {
		case <-x.drop: // stale: run takes the fresh one
		default:
		}
	}
}

// Subscribe delivers every message matching filter to fn, now and after
// every reconnect (retained messages included). fn runs on paho's
// goroutines: it must copy what it keeps and must not block.
//
// While connected it waits for the broker and returns its refusal, a
// failure or a timeout, and that connection ends: a connection works only
// with every filter granted, and the client tries the next URL. While not
// yet connected it returns nil and the connect subscribes. Either way the
// filter is kept and subscribed again on every connect. After Close it
// returns ErrClosed.
func (x *Client) Subscribe(filter string, fn func(Message)) error {
	select {
	case <-x.stop:
		return fmt.Errorf("subscribe %s: %w", filter, ErrClosed)
	default:
	}
	s := &sub{filter: filter, fn: fn}
	x.mu.Lock()
	x.subs[filter] = s
	c := x.cur
	x.mu.Unlock()
	if c == nil {
		return nil
	}
	err := x.subscribe(c, filter, x.deliver(fn), nil)
	if err != nil && !errors.Is(err, ErrClosed) {
		x.fail(c, err)
	}
	return err
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

// Healthy returns nil while the connection works: its CONNECT answered,
// every filter granted, its last probe answered, and not lost since. A
// TCP connection whose CONNECT the broker has not answered is not
// healthy, nor one whose probe did not come back in time.
func (x *Client) Healthy() error {
	x.mu.Lock()
	c, working := x.cur, x.working
	x.mu.Unlock()
	if c == nil || !working || !c.IsConnectionOpen() {
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
