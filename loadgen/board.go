package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"switchyard/devices"
)

// board is one simulated board: its own paho connection, publishing status,
// led and count as the wire contract says, and answering led/set.
type board struct {
	r    *run
	idx  int
	id   string
	cli  mqtt.Client
	rx   *rxConn        // its TCP connection; nil: no receive timestamps
	led  *atomic.Int64  // 1: on (in run.sh)
	sent []atomic.Int64 // send time (unix ns) by seq; 0: not sent (in run.sh)
}

func (b *board) topic(k devices.Kind) string { return b.r.topics.Topic(b.id, k) }

// publish publishes payload on the board's topic of kind k with the QoS
// and retain flag the contract gives k.
func (b *board) publish(k devices.Kind, payload string) mqtt.Token {
	return b.cli.Publish(b.topic(k), k.QoS(), k.Retained(), payload)
}

// connect connects the board, subscribes to its commands and publishes its
// retained state (online, LED off), waiting for each step.
func (b *board) connect() error {
	opts := mqtt.NewClientOptions().
		AddBroker(b.r.cfg.MQTT).
		SetClientID(b.id).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetKeepAlive(60*time.Second).
		SetConnectTimeout(10*time.Second).
		SetWriteTimeout(10*time.Second).
		SetWill(b.topic(devices.KindStatus), devices.Offline, devices.KindStatus.QoS(), devices.KindStatus.Retained())
	if u, err := url.Parse(b.r.cfg.MQTT); err == nil && (u.Scheme == "tcp" || u.Scheme == "mqtt") {
		open := rxOpen(&b.rx)
		opts.SetCustomOpenConnectionFn(func(u *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
			c, err := open(u, o)
			if err != nil {
				return nil, err
			}
			return &watchConn{Conn: c, b: b, topic: []byte(b.topic(devices.KindLED))}, nil
		})
	}
	b.cli = mqtt.NewClient(opts)
	if err := wait(b.cli.Connect()); err != nil {
		return fmt.Errorf("board %s: connect %s: %w", b.id, b.r.cfg.MQTT, err)
	}
	if err := wait(b.cli.Subscribe(b.topic(devices.KindLEDSet), devices.BoardSubscribeQoS, b.onCommand)); err != nil {
		return fmt.Errorf("board %s: subscribe: %w", b.id, err)
	}
	if err := wait(b.publish(devices.KindStatus, devices.Online)); err != nil {
		return fmt.Errorf("board %s: publish status: %w", b.id, err)
	}
	if err := wait(b.publish(devices.KindLED, devices.LEDPayload(false))); err != nil {
		return fmt.Errorf("board %s: publish led: %w", b.id, err)
	}
	return nil
}

// watchConn notes when its board writes its led state while a toggle of
// it is in flight: the toggle's second leg starts there, whenever the load
// generator got round to running the board's handler and paho's writer.
// paho writes each packet with one Write.
type watchConn struct {
	net.Conn
	b     *board
	topic []byte
}

func (c *watchConn) Write(p []byte) (int, error) {
	if sh := c.b.r.sh; sh.toggling(c.b.idx) && bytes.Contains(p, c.topic) {
		sh.ledOut.CompareAndSwap(0, time.Now().UnixNano())
	}
	return c.Conn.Write(p)
}

// wait waits for a paho token for at most 10 s.
func wait(t mqtt.Token) error {
	if !t.WaitTimeout(10 * time.Second) {
		return fmt.Errorf("no answer within 10 s")
	}
	return t.Error()
}

// onCommand applies led/set as a board does and confirms with its led
// state. It runs on paho's router goroutine, so it must not block.
func (b *board) onCommand(_ mqtt.Client, m mqtt.Message) {
	if m.Retained() {
		return // commands are never retained; a board ignores a retained copy
	}
	if sh := b.r.sh; sh.toggling(b.idx) && sh.boardAt.Load() == 0 {
		now := time.Now()
		at := now
		if b.rx != nil {
			// The latest read's receive time: this command's, unless
			// another packet has come since (rare: nothing else is sent
			// to a board while its toggle is in flight but a PUBACK).
			if ns := b.rx.last.Load(); ns != 0 {
				at = time.Unix(0, ns)
			}
		}
		if sh.boardAt.CompareAndSwap(0, at.UnixNano()) {
			sh.boardRead.Store(now.UnixNano())
		}
	}
	switch strings.ToUpper(string(m.Payload())) {
	case "TOGGLE":
		b.led.Store(1 - b.led.Load())
	case "ON":
		b.led.Store(1)
	case "OFF":
		b.led.Store(0)
	default:
		return
	}
	state := "OFF"
	if b.led.Load() == 1 {
		state = "ON"
	}
	b.publish(devices.KindLED, state) // not waited for: see above
}

// publishLoop publishes count at the configured rate from t0 until ctx
// ends, catching up when a tick comes late: at time t the board has sent
// floor(rate × (t - t0 + phase)) messages. Ticks are at least 1 ms apart.
func (b *board) publishLoop(ctx context.Context, t0 time.Time, wg *sync.WaitGroup) {
	defer wg.Done()
	rate := b.r.cfg.Rate
	period := max(time.Duration(float64(time.Second)/rate), time.Millisecond)
	// Spread the boards over one period so they do not publish in step.
	phase := time.Duration(int64(period) * int64(b.idx) / int64(max(len(b.r.boards), 1)))
	start := t0.Add(phase)
	select {
	case <-time.After(time.Until(start)):
	case <-ctx.Done():
		return
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	winStart, winEnd := b.r.winStart.Load(), b.r.winEnd.Load()
	topic, qos, retain := b.topic(devices.KindCount), devices.KindCount.QoS(), devices.KindCount.Retained()
	var seq int64
	for {
		due := int64(rate*time.Since(start).Seconds()) + 1
		for ; seq < due && seq < int64(len(b.sent)); seq++ {
			now := time.Now().UnixNano()
			if now >= winEnd {
				return
			}
			b.sent[seq].Store(now)
			if now >= winStart {
				b.r.sh.published.Add(1)
			}
			// A string: paho keeps a []byte payload until it is written.
			b.cli.Publish(topic, qos, retain, strconv.FormatInt(b.r.base+seq, 10))
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// makeBoards makes the run's boards, their send times and LEDs in r.sh.
func (r *run) makeBoards() {
	r.boards = make([]*board, r.cfg.Boards)
	for i := range r.boards {
		r.boards[i] = &board{r: r, idx: i, id: fmt.Sprintf("%s-%d", r.cfg.IDPrefix, i), sent: r.sh.sent(i), led: r.sh.led(i)}
	}
}

// connectBoards connects every board, cfg.Parallel at a time.
func (r *run) connectBoards(ctx context.Context) error {
	if err := parallel(ctx, r.cfg.Parallel, len(r.boards), func(i int) error { return r.boards[i].connect() }); err != nil {
		return fmt.Errorf("connect boards: %w", err)
	}
	return nil
}

// startPublishing starts every board's publishLoop from t0, each counted
// in wg.
func (r *run) startPublishing(ctx context.Context, t0 time.Time, wg *sync.WaitGroup) {
	for _, b := range r.boards {
		wg.Add(1)
		go b.publishLoop(ctx, t0, wg) // ends at the window's end or ctx
	}
}

// disconnectBoards disconnects every connected board.
func (r *run) disconnectBoards() {
	var wg sync.WaitGroup
	for _, b := range r.boards {
		if b.cli == nil || !b.cli.IsConnected() {
			continue
		}
		wg.Add(1)
		go func() { // ends when paho has disconnected (at most 250 ms)
			defer wg.Done()
			b.cli.Disconnect(250)
		}()
	}
	wg.Wait()
}
