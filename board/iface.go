package board

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// LED is a board's LED output.
type LED interface {
	// Set turns the LED on or off.
	Set(on bool) error
}

// Message is one MQTT application message, inbound or outbound.
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte
	// Retained is set on an inbound message that the broker sent from its
	// retained store (rather than live), and on an outbound message or Will
	// that the broker should retain.
	Retained bool
}

// ConnectOptions are the parameters of one MQTT connection.
type ConnectOptions struct {
	ClientID  string
	Username  string
	Password  string
	KeepAlive time.Duration
	// Will is the Last Will the broker publishes if the connection ends
	// without a DISCONNECT; nil for none.
	Will *Message
	// OnMessage receives every inbound message of this connection. It must
	// not block; it may be called from another goroutine.
	OnMessage func(Message)
	// OnLost is called at most once when this connection ends other than by
	// Disconnect. It must not block; it may be called from another goroutine.
	OnLost func(error)
}

// Session is one client's MQTT connection, opened and closed again as often
// as needed. A Board uses a Session from one goroutine at a time; the
// callbacks in ConnectOptions may arrive from others.
type Session interface {
	// Connect opens a connection and returns once the broker has accepted
	// it (CONNACK), or with an error. A Session holds one connection at a
	// time: Connect is only called when no connection is open.
	Connect(ctx context.Context, opts ConnectOptions) error
	// Subscribe subscribes to filter and returns once the broker has
	// granted it (SUBACK).
	Subscribe(ctx context.Context, filter string, qos byte) error
	// Publish sends a message and returns once it is delivered at its QoS
	// (written for QoS 0, acknowledged for QoS 1). It does not keep payload
	// after it returns.
	Publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error
	// Disconnect ends the connection cleanly (DISCONNECT, so no Will) and
	// releases it. It is idempotent and safe when not connected.
	Disconnect(ctx context.Context) error
}

// ErrNotConnected is what a Session's Subscribe and Publish return, wrapped,
// when no connection is open.
var ErrNotConnected = errors.New("not connected")

// Timer is a one-shot timer or a ticker from a Clock.
type Timer interface {
	// C delivers the time when the timer fires (every period for a ticker,
	// which drops ticks for a slow receiver).
	C() <-chan time.Time
	// Stop stops the timer; it need not drain C.
	Stop()
}

// Clock makes timers and tickers, so that intervals and backoff are
// testable.
type Clock interface {
	NewTimer(d time.Duration) Timer
	NewTicker(d time.Duration) Timer
}

// Logger receives a board's log lines as a message and key-value pairs, in
// the manner of log/slog; a *slog.Logger satisfies it.
type Logger interface {
	Debug(msg string, args ...any)
	Info(msg string, args ...any)
	Warn(msg string, args ...any)
}

// SystemClock is the real Clock, backed by package time.
type SystemClock struct{}

// NewTimer returns a time.Timer as a Timer.
func (SystemClock) NewTimer(d time.Duration) Timer { return sysTimer{time.NewTimer(d)} }

// NewTicker returns a time.Ticker as a Timer.
func (SystemClock) NewTicker(d time.Duration) Timer { return sysTicker{time.NewTicker(d)} }

type sysTimer struct{ t *time.Timer }

func (t sysTimer) C() <-chan time.Time { return t.t.C }
func (t sysTimer) Stop()               { t.t.Stop() }

type sysTicker struct{ t *time.Ticker }

func (t sysTicker) C() <-chan time.Time { return t.t.C }
func (t sysTicker) Stop()               { t.t.Stop() }

// MemoryLED is an LED kept in memory, for simulated boards and tests. It is
// safe for concurrent use.
type MemoryLED struct{ on atomic.Bool }

// Set records the state; it never fails.
func (l *MemoryLED) Set(on bool) error {
	l.on.Store(on)
	return nil
}

// On reports the last state set.
func (l *MemoryLED) On() bool { return l.on.Load() }

type nopLogger struct{}

func (nopLogger) Debug(string, ...any) {}
func (nopLogger) Info(string, ...any)  {}
func (nopLogger) Warn(string, ...any)  {}
