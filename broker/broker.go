// Package broker embeds the Mochi MQTT broker that boards connect to.
//
// It listens on TCP and, optionally, on MQTT over WebSocket; keeps retained
// messages in a crash-safe log when a storage path is set; and serves the
// rest of the control plane through Mochi's inline client: Publish,
// Subscribe and ClearRetained, whose signatures carry no Mochi types.
package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	allowall "github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/packets"

	"switchyard/devices"
	"switchyard/internal/mqttnet"
)

// Config configures a Broker. The zero value is a broker on :1883 with no
// WebSocket listener, memory-only retained messages and prefix "devices".
type Config struct {
	// Listen is the MQTT-over-TCP address; empty means ":1883".
	Listen string
	// WSListen is the MQTT-over-WebSocket address (path /mqtt); empty: off.
	WSListen string
	// TLSListen is the MQTT-over-TLS address; empty: off. It needs TLS.
	TLSListen string
	// TLS is the server certificate configuration for TLSListen.
	TLS *tls.Config
	// AllowedOrigins are the browser origins, besides the listener's own
	// host, allowed to open MQTT over WebSocket; "*" allows any.
	AllowedOrigins []string
	// StoragePath is the file retained messages are kept in; empty keeps
	// them in memory only.
	StoragePath string
	// Topics is the topic layout; the zero value means prefix "devices".
	Topics devices.Topics
	// MaxClientWritesPending bounds each client's outbound queue in
	// packets; 0 means 256.
	MaxClientWritesPending int32
	// Auth decides who may connect and what they may do; nil allows
	// everything (tests and trusted setups only).
	Auth Authorizer
	// OnThrottled, when set, hears of the first CONNECT refused in each
	// interval an address is throttled for (too many failed logins, see
	// auth.ThrottledError): its remote address and the user name tried.
	// It runs inside a Mochi hook and must not block (the audit log's
	// Audit does not). Every refusal is counted in Throttled.
	OnThrottled func(remote, name string)
	// MaxPacketSize bounds an MQTT packet in bytes; 0 means 64 KiB.
	MaxPacketSize uint32
	// MaxClients bounds connected MQTT clients; 0 means unlimited.
	MaxClients int64
	// MaxDevices bounds the devices that may hold retained messages under
	// the prefix; 0 means unlimited.
	MaxDevices int
	// ConnectTimeout is how long a connection may take to send CONNECT;
	// 0 means 10 s.
	ConnectTimeout time.Duration
	// Logger receives the broker's logs; nil discards them.
	Logger *slog.Logger
}

// Message is an MQTT message as an inline subscriber sees it.
type Message struct {
	Topic   string
	Payload []byte // valid only during the handler call: copy to keep
	Retain  bool
	Created time.Time // when the broker received it (second precision)
	// Client is the id of the client that published it; empty for the
	// control plane's own messages and for stored ones restored at Start.
	Client string
	// User is the name Client logged in with; empty when anonymous.
	User string
	// Will is set when the message is Client's Last Will.
	Will bool
	// Restored is set for a stored retained message delivered by Start:
	// the state before the restart, not news.
	Restored bool
}

// Broker is an embedded MQTT broker.
type Broker struct {
	srv    *mqtt.Server
	tcp    net.Listener
	tlsLn  net.Listener   // nil when off
	accept []*mqttnet.TCP // the TCP and TLS listeners, for Healthy
	ws     *wsListener    // nil when off
	store  *retainLog     // nil when memory only
	expiry *retainExpiry  // nil when Mochi's own sweep expires retained messages
	auth   *authHook      // nil when everybody is let in
	wills  *willHook
	log    *slog.Logger

	nextSubID atomic.Int64 // distinct inline subscription id per filter
	serving   atomic.Bool

	mu    sync.Mutex // guards early
	early []earlySub // subscribed before Start: they get the stored retained messages

	closeOnce sync.Once
	closeErr  error
}

// New creates a broker: it binds its listeners (so a port in use fails
// here, naming the address) and loads stored retained messages. Start
// begins serving.
func New(cfg Config) (*Broker, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	topics := cfg.Topics
	if topics.Prefix() == "" {
		topics = devices.MustTopics(devices.DefaultPrefix)
	}
	addr := cfg.Listen
	if addr == "" {
		addr = ":1883"
	}
	pending := cfg.MaxClientWritesPending
	if pending <= 0 {
		pending = 256
	}

	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumMessageExpiryInterval = 0 // retained board state must never expire
	caps.MaximumClientWritesPending = pending
	caps.MaximumSessionExpiryInterval = 24 * 60 * 60
	caps.MaximumPacketSize = cfg.MaxPacketSize
	if caps.MaximumPacketSize == 0 {
		caps.MaximumPacketSize = 64 << 10
	}
	if cfg.MaxClients > 0 {
		caps.MaximumClients = cfg.MaxClients
	}
	connectTimeout := cfg.ConnectTimeout
	if connectTimeout <= 0 {
		connectTimeout = 10 * time.Second
	}
	srv := mqtt.New(&mqtt.Options{
		Capabilities:           caps,
		InlineClient:           true,
		SysTopicResendInterval: math.MaxInt32, // $SYS updates run ReadMemStats: effectively never
		// Boards send small packets: 1 KiB read buffers instead of 2 KiB
		// save memory on every connection (bigger packets still work).
		ClientNetReadBufferSize: 1024,
		Logger:                  slog.New(minLevel{log.Handler(), slog.LevelError}),
	})

	b := &Broker{srv: srv, log: log}
	ok := false
	defer func() {
		if !ok {
			b.release()
		}
	}()
	var authHookErr error
	if cfg.Auth == nil {
		authHookErr = srv.AddHook(new(allowall.AllowHook), nil)
	} else {
		b.auth = &authHook{az: cfg.Auth, srv: srv, log: log, onThrottled: cfg.OnThrottled}
		authHookErr = srv.AddHook(b.auth, nil)
	}
	if authHookErr != nil {
		return nil, fmt.Errorf("mqtt auth hook: %w", authHookErr)
	}
	if err := srv.AddHook(mqttnet.NewHandOver(srv), nil); err != nil {
		return nil, fmt.Errorf("mqtt hand-over hook: %w", err)
	}
	b.wills = new(willHook)
	if err := srv.AddHook(b.wills, nil); err != nil {
		return nil, fmt.Errorf("mqtt will hook: %w", err)
	}
	if cfg.StoragePath != "" {
		store, err := openRetainLog(cfg.StoragePath, topics, log)
		if err != nil {
			return nil, err
		}
		b.store = store
		if err := srv.AddHook(store, nil); err != nil {
			return nil, fmt.Errorf("mqtt storage hook: %w", err)
		}
	}
	// Retained messages with an expiry are expired by the broker, not by
	// Mochi's sweep of every retained message (see expiry.go).
	if err := stopRetainedSweep(srv); err != nil {
		log.Warn("mqtt: keeping Mochi's once-a-second sweep of every retained message", "err", err)
	} else {
		b.expiry = newRetainExpiry(srv, b.store)
		if err := srv.AddHook(b.expiry, nil); err != nil {
			return nil, fmt.Errorf("mqtt retained expiry hook: %w", err)
		}
	}
	if cfg.MaxDevices > 0 {
		var stored []string
		if b.store != nil {
			for _, m := range b.store.restore {
				stored = append(stored, m.TopicName)
			}
		}
		if err := srv.AddHook(newDeviceLimit(topics, cfg.MaxDevices, stored, log), nil); err != nil {
			return nil, fmt.Errorf("mqtt device limit hook: %w", err)
		}
	}
	tcp, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen mqtt %s: %w", addr, err)
	}
	b.tcp = tcp
	tcpL := mqttnet.NewTCP("tcp", tcp, connectTimeout, log)
	b.accept = append(b.accept, tcpL)
	if err := srv.AddListener(tcpL); err != nil {
		return nil, fmt.Errorf("mqtt listener %s: %w", addr, err)
	}
	if cfg.TLSListen != "" {
		if cfg.TLS == nil {
			return nil, fmt.Errorf("mqtt tls listener %s: no certificate configured", cfg.TLSListen)
		}
		ln, err := net.Listen("tcp", cfg.TLSListen)
		if err != nil {
			return nil, fmt.Errorf("listen mqtt tls %s: %w", cfg.TLSListen, err)
		}
		b.tlsLn = ln
		tlsL := mqttnet.NewTCP("tls", tls.NewListener(ln, cfg.TLS), connectTimeout, log)
		b.accept = append(b.accept, tlsL)
		if err := srv.AddListener(tlsL); err != nil {
			return nil, fmt.Errorf("mqtt tls listener %s: %w", cfg.TLSListen, err)
		}
	}
	if cfg.WSListen != "" {
		ws, err := newWSListener(cfg.WSListen, cfg.AllowedOrigins, connectTimeout, log)
		if err != nil {
			return nil, err
		}
		b.ws = ws
		if err := srv.AddListener(ws); err != nil {
			return nil, fmt.Errorf("mqtt websocket listener %s: %w", cfg.WSListen, err)
		}
	}
	ok = true
	return b, nil
}

// release frees what New acquired when New fails.
func (b *Broker) release() {
	if b.tcp != nil {
		b.tcp.Close()
	}
	if b.tlsLn != nil {
		b.tlsLn.Close()
	}
	if b.ws != nil {
		b.ws.ln.Close()
	}
	if b.store != nil {
		b.store.Close()
	}
}

// Start serves clients on every listener. Stored retained messages are in
// place before the first client connects.
func (b *Broker) Start() error {
	// Subscribers registered before Start get the stored retained messages
	// now, before any client can connect: delivered later, by Mochi's scan
	// at subscribe time, a stale stored value could overtake a board's
	// fresh publish (the scan's snapshot is delivered while live messages
	// flow).
	if b.store != nil {
		b.mu.Lock()
		subs := b.early
		b.early = nil
		b.mu.Unlock()
		for _, sub := range subs {
			for _, m := range b.store.restore {
				if devices.MatchFilter(sub.filter, m.TopicName) {
					sub.fn(Message{Topic: m.TopicName, Payload: m.Payload, Retain: true, Created: time.Unix(m.Created, 0), Restored: true})
				}
			}
		}
	}
	if err := b.srv.Serve(); err != nil {
		return fmt.Errorf("start mqtt broker: %w", err)
	}
	if b.expiry != nil {
		b.expiry.start()
	}
	if b.store != nil {
		b.store.restore = nil // Mochi has loaded it; don't keep a second copy
	}
	b.serving.Store(true)
	return nil
}

// Addr returns the bound MQTT-over-TCP address.
func (b *Broker) Addr() net.Addr { return b.tcp.Addr() }

// TLSAddr returns the bound MQTT-over-TLS address, or nil when off.
func (b *Broker) TLSAddr() net.Addr {
	if b.tlsLn == nil {
		return nil
	}
	return b.tlsLn.Addr()
}

// WSAddr returns the bound MQTT-over-WebSocket address, or nil when off.
func (b *Broker) WSAddr() net.Addr {
	if b.ws == nil {
		return nil
	}
	return b.ws.ln.Addr()
}

type earlySub struct {
	filter string
	fn     func(Message)
}

// ErrClosed is returned by operations on a closed broker.
var ErrClosed = errors.New("broker closed")

// Publish publishes a message as the control plane, bypassing access rules.
func (b *Broker) Publish(topic string, payload []byte, retain bool, qos byte) error {
	if !b.serving.Load() {
		return fmt.Errorf("publish %s: %w", topic, ErrClosed)
	}
	if err := b.srv.Publish(topic, payload, retain, qos); err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	return nil
}

// Subscribe delivers every message matching filter to fn, starting with the
// retained ones; subscribe before Start to get the stored ones in order
// before any live message. fn runs on the publishing client's goroutine,
// possibly on several at once: it must copy what it keeps and must not
// block.
func (b *Broker) Subscribe(filter string, fn func(Message)) error {
	if !b.serving.Load() {
		b.mu.Lock()
		b.early = append(b.early, earlySub{filter, fn})
		b.mu.Unlock()
	}
	id := int(b.nextSubID.Add(1))
	err := b.srv.Subscribe(filter, id, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		m := Message{
			Topic:   pk.TopicName,
			Payload: pk.Payload,
			Retain:  pk.FixedHeader.Retain,
			Created: time.Unix(pk.Created, 0),
		}
		b.origin(&m, &pk)
		fn(m)
	})
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", filter, err)
	}
	return nil
}

// ClearRetained removes every retained message matching filter by
// publishing an empty retained message to its topic, and returns how many
// it cleared.
func (b *Broker) ClearRetained(filter string) (int, error) {
	n := 0
	for _, pk := range b.srv.Topics.Messages(filter) {
		if err := b.Publish(pk.TopicName, nil, true, 0); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// ClientLocalAddr returns the local address of the connection of the
// connected client with this client id: the address that client reached
// the broker at (the update service builds a board's download URL from
// it). ok is false when no such client is connected. It takes only the
// read lock of Mochi's client map, briefly: it never waits for a client.
func (b *Broker) ClientLocalAddr(clientID string) (addr net.Addr, ok bool) {
	cl, ok := b.srv.Clients.Get(clientID)
	if !ok || cl.Closed() || cl.Net.Conn == nil { // Conn is set once, when the client is made
		return nil, false
	}
	return cl.Net.Conn.LocalAddr(), true
}

// Healthy returns nil while the broker is serving: started, not closed,
// and every MQTT listener able to accept (not out of file descriptors).
func (b *Broker) Healthy() error {
	if !b.serving.Load() {
		return ErrClosed
	}
	for _, l := range b.accept {
		if err := l.Err(); err != nil {
			return err
		}
	}
	return nil
}

// Clients returns the number of connected MQTT clients.
func (b *Broker) Clients() int64 {
	return atomic.LoadInt64(&b.srv.Info.ClientsConnected)
}

// drain stops accepting, so that no client arrives while
// mqttnet.CloseServer disconnects the others before closing Mochi.
func (b *Broker) drain() {
	b.tcp.Close()
	if b.tlsLn != nil {
		b.tlsLn.Close()
	}
	if b.ws != nil {
		b.ws.ln.Close()
	}
}

// Close disconnects every client, stops the listeners and flushes stored
// retained messages. It is safe to call more than once.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		wasServing := b.serving.Swap(false)
		if b.expiry != nil {
			b.expiry.close()
		}
		if wasServing {
			b.drain()
			_ = mqttnet.CloseServer(b.srv, 2*time.Second)
		} else {
			b.release()
		}
		if b.store != nil {
			b.closeErr = b.store.Close()
		}
	})
	return b.closeErr
}

// minLevel passes on records at or above min: Mochi logs every hook and
// listener at Info, and every refused packet at Warn with the whole packet
// dumped (a hostile client could flood the log), so only its errors pass.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}
