package board

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"switchyard/devices"
)

// Defaults of Config.
const (
	DefaultFirmware   = "devicefw"
	DefaultInterval   = time.Second
	DefaultKeepAlive  = 10 * time.Second
	DefaultMinBackoff = 500 * time.Millisecond
	DefaultMaxBackoff = 30 * time.Second
	DefaultOpTimeout  = 10 * time.Second

	// FailoverConnectTimeout bounds each connect (dial and CONNACK) of a
	// board with several brokers, so that a dead node costs at most this
	// before the next one is tried.
	FailoverConnectTimeout = 5 * time.Second
)

// recheckTicks is how many ticks after a connect a board with several
// brokers (a cluster's nodes) reads its own retained status again. A
// clustered broker may store the Will of a connection it closed during a
// failover seconds late, after the board's online on its new connection,
// and deliver it to nobody: NATS did, leaving a board that counts on every
// dashboard shown offline to a late subscriber (Home Assistant). The
// second subscription's retained copy shows it, and the board answers,
// then looks again recheckTicks later, until a look finds it online.
const recheckTicks = 5

// inboxSize bounds the inbound messages waiting for a busy board; more are
// dropped (and logged) so the MQTT client delivering them never blocks.
// The board's own status is not among them: only its latest matters, and
// it must never be lost (see Board.status).
const inboxSize = 8

// Config describes one board. ID and Session are required; every other
// field has a default.
type Config struct {
	ID     string // device id, see devices.ValidateID
	Prefix string // topic prefix; empty means devices.DefaultPrefix

	// Info fields: firmware (default DefaultFirmware), board model
	// (default "unknown"), and optional name and ip.
	Firmware string
	Model    string
	Name     string
	IP       string

	Interval  time.Duration // count period, default DefaultInterval
	KeepAlive time.Duration // MQTT keepalive, default DefaultKeepAlive
	Username  string
	Password  string

	LED LED // default a MemoryLED
	// Session is the MQTT session to a single broker; Brokers, several
	// brokers to fail over between (rotation.go). Set exactly one.
	Session Session
	Brokers []Broker
	Clock   Clock  // default SystemClock
	Log     Logger // default discards

	// Rand returns a uniform random number in [0, n) for n > 0; it jitters
	// the reconnect backoff. Default math/rand/v2.
	Rand func(n int64) int64
	// MinBackoff is the cap of the first reconnect delay (default
	// DefaultMinBackoff); every failed attempt doubles it up to MaxBackoff
	// (default DefaultMaxBackoff). The delay is drawn uniformly below the
	// cap ("full jitter") so a fleet does not reconnect in lockstep.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// OpTimeout bounds one connect-and-resync and each publish (default
	// DefaultOpTimeout).
	OpTimeout time.Duration

	// Updates (v2). Updater installs new builds; nil means the board cannot
	// update: info leaves "update" out and every job on update/set is
	// answered failed, error "unsupported". Platform is info's "platform"
	// ("linux/arm64", "sim", "esp32c3"; optional). Version is the version
	// running, for the "running" of update reports and to answer a job for
	// it with confirmed at once; default the last word of Firmware
	// ("devicefw 1.2" runs "1.2").
	Updater  Updater
	Platform string
	Version  string

	// Set only by whoever starts the board as the next build of an update
	// (a hand-over, see HandOver), never on a plain boot. InitialLED is the
	// LED state to start with instead of off; Report is the update report
	// to publish after every (re)connect until a job replaces it (the
	// outcome of a job an earlier build ran); Trial puts the board on
	// trial.
	InitialLED *bool
	Report     *devices.UpdateReport
	Trial      *Trial
}

// Board is one board's firmware. Create it with New and run it with Run.
type Board struct {
	id                              string
	setTopic                        string
	statusTopic, ledTopic, cntTopic string
	infoTopic                       string
	info                            []byte
	will                            Message
	interval, keepAlive, opTimeout  time.Duration
	minBackoff, maxBackoff          time.Duration
	username, password              string
	led                             LED
	brokers                         []Broker
	sess                            Session // the session of the broker of the current attempt
	clock                           Clock
	log                             Logger
	rand                            func(int64) int64
	initialLED                      bool

	// Updates: topics, the updater (nil: cannot update) and the version
	// running; see update.go.
	updSetTopic, updTopic string
	updater               Updater
	firmware, version     string

	// Owned by the Run goroutine.
	on         bool
	count      int64
	connected  bool
	saidOnline bool // the current connection has sent status online
	// recheckIn counts the ticks until the board subscribes its own status
	// once more, on a connection to one of several brokers (see
	// recheckTicks); rechecking: that subscription's retained copy is
	// answered like a live offline (handleStatus).
	recheckIn  int
	rechecking bool
	buf        []byte
	upd        updateState

	// Shared with the session's callbacks.
	gen   atomic.Uint32 // connection generation; a stale OnLost is ignored
	inbox chan Message
	// status holds the latest message on the board's own status topic
	// (a newer one replaces it): a retained offline replayed by a broker
	// while the board is busy connecting must still be answered with
	// online, however many commands came meanwhile.
	status chan Message
	lost   chan error
}

// New checks cfg and returns a board that is not yet running.
func New(cfg Config) (*Board, error) {
	if err := devices.ValidateID(cfg.ID); err != nil {
		return nil, fmt.Errorf("new board: %w", err)
	}
	topics, err := devices.NewTopics(cfg.Prefix)
	if err != nil {
		return nil, fmt.Errorf("new board %s: %w", cfg.ID, err)
	}
	brokers := cfg.Brokers
	switch {
	case cfg.Session != nil && len(brokers) > 0:
		return nil, fmt.Errorf("new board %s: both Session and Brokers set", cfg.ID)
	case cfg.Session != nil:
		brokers = []Broker{{Session: cfg.Session}}
	case len(brokers) == 0:
		return nil, fmt.Errorf("new board %s: no MQTT session", cfg.ID)
	}
	for i, br := range brokers {
		if br.Session == nil {
			return nil, fmt.Errorf("new board %s: broker %d (%s) has no MQTT session", cfg.ID, i+1, br.URL)
		}
	}
	if cfg.Interval < 0 || cfg.KeepAlive < 0 {
		return nil, fmt.Errorf("new board %s: negative interval or keepalive", cfg.ID)
	}
	b := &Board{
		id:          cfg.ID,
		setTopic:    topics.LEDSet(cfg.ID),
		updSetTopic: topics.UpdateSet(cfg.ID),
		updTopic:    topics.Update(cfg.ID),
		updater:     cfg.Updater,
		statusTopic: topics.Status(cfg.ID),
		ledTopic:    topics.LED(cfg.ID),
		cntTopic:    topics.Count(cfg.ID),
		infoTopic:   topics.Info(cfg.ID),
		interval:    orDefault(cfg.Interval, DefaultInterval),
		keepAlive:   orDefault(cfg.KeepAlive, DefaultKeepAlive),
		opTimeout:   orDefault(cfg.OpTimeout, DefaultOpTimeout),
		minBackoff:  orDefault(cfg.MinBackoff, DefaultMinBackoff),
		maxBackoff:  orDefault(cfg.MaxBackoff, DefaultMaxBackoff),
		username:    cfg.Username,
		password:    cfg.Password,
		led:         cfg.LED,
		brokers:     append([]Broker(nil), brokers...),
		sess:        brokers[0].Session,
		clock:       cfg.Clock,
		log:         cfg.Log,
		rand:        cfg.Rand,
		inbox:       make(chan Message, inboxSize),
		status:      make(chan Message, 1),
		lost:        make(chan error, 1),
	}
	b.will = Message{Topic: b.statusTopic, Payload: []byte(devices.Offline), QoS: 1, Retained: true}
	firmware, model := cfg.Firmware, cfg.Model
	if firmware == "" {
		firmware = DefaultFirmware
	}
	if model == "" {
		model = "unknown"
	}
	info := devices.BoardInfo{
		ID: cfg.ID, Firmware: firmware, Board: model, Name: cfg.Name, IP: cfg.IP,
		IntervalMS: b.interval.Milliseconds(), Platform: cfg.Platform,
	}
	if b.updater != nil {
		info.Update = b.updater.Method()
	}
	b.info = info.AppendJSON(nil)
	b.firmware, b.version = firmware, cfg.Version
	if b.version == "" {
		b.version = firmware[strings.LastIndexByte(firmware, ' ')+1:]
	}
	if cfg.InitialLED != nil {
		b.initialLED = *cfg.InitialLED
	}
	if err := b.initUpdate(cfg); err != nil {
		return nil, fmt.Errorf("new board %s: %w", cfg.ID, err)
	}
	if b.led == nil {
		b.led = new(MemoryLED)
	}
	if b.clock == nil {
		b.clock = SystemClock{}
	}
	if b.log == nil {
		b.log = nopLogger{}
	}
	if b.rand == nil {
		b.rand = rand.Int64N
	}
	return b, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// ID returns the board's device id.
func (b *Board) ID() string { return b.id }

// Run runs the board until ctx is cancelled: it connects (retrying with
// backoff for as long as it takes, failing over between its brokers, see
// rotation.go), resynchronises after every connect, counts and obeys
// commands. When ctx is cancelled it publishes status offline, disconnects
// and returns nil, or an error if the offline status could not be
// published. When an update job hands the board over to a new build, Run
// says offline, disconnects and returns a *HandOver. Run must not be
// called twice.
func (b *Board) Run(ctx context.Context) error {
	b.setLED(b.initialLED) // boot state: off, unless handed over
	tick := b.clock.NewTicker(b.interval)
	defer tick.Stop()
	defer b.stopJob() // the update goroutine ends before Run returns
	rot := rotation{n: len(b.brokers)}
	for {
		err := b.connect(ctx, rot.next)
		online := err == nil
		if online {
			err = b.serve(ctx, tick)
		}
		if errors.Is(err, errHandOver) {
			return b.handOver()
		}
		if ctx.Err() != nil {
			return b.shutdown()
		}
		// A connection that is still up (a failed resync or publish) says
		// offline first, as a clean DISCONNECT suppresses the Will; unless
		// it never said online: a resync refused before that (NATS, while
		// it elects leaders after a node died) must not write an offline
		// that a clustered broker can store after the online the board
		// sends on the next node a moment later.
		b.drop(b.saidOnline && !errors.Is(err, errLost))
		wait, n := rot.after(online)
		if !wait {
			b.log.Warn("mqtt connection down, trying the next broker", "id", b.id, "err", err, "broker", b.brokers[rot.next].URL)
			continue
		}
		d := b.backoff(n)
		b.log.Warn("mqtt connection down, retrying", "id", b.id, "err", err, "in", d)
		switch err := b.wait(ctx, d, tick); {
		case errors.Is(err, errHandOver):
			return b.handOver()
		case err != nil:
			return b.shutdown()
		}
	}
}

// errLost marks an error of a connection that is already gone.
var errLost = errors.New("connection lost")

// connect opens a connection to broker i and resynchronises: subscribe to
// led/set, update/set and its own status and wait for the SUBACKs (a
// refused led/set or status fails the connect), then
// publish status, info and led, then the last update report, if any (and
// start the trial timer of a board on trial).
func (b *Board) connect(ctx context.Context, i int) error {
	gen := b.gen.Add(1)
	select { // a loss reported by an earlier connection is no news
	case <-b.lost:
	default:
	}
	b.sess = b.brokers[i].Session
	opCtx, cancel := context.WithTimeout(ctx, b.opTimeout)
	defer cancel()
	connCtx := opCtx
	if len(b.brokers) > 1 { // a dead node must not hold up the next one
		var cancel context.CancelFunc
		connCtx, cancel = context.WithTimeout(opCtx, FailoverConnectTimeout)
		defer cancel()
	}
	err := b.sess.Connect(connCtx, ConnectOptions{
		ClientID:  b.id,
		Username:  b.username,
		Password:  b.password,
		KeepAlive: b.keepAlive,
		Will:      &b.will,
		OnMessage: func(m Message) { b.onMessage(gen, m) },
		OnLost:    func(err error) { b.onLost(gen, err) },
	})
	if err != nil {
		return err // the session names the operation and the broker
	}
	b.connected, b.saidOnline, b.rechecking, b.recheckIn = true, false, false, 0
	if len(b.brokers) > 1 {
		b.recheckIn = recheckTicks
	}
	if err := b.sess.Subscribe(opCtx, b.setTopic, devices.BoardSubscribeQoS); err != nil {
		return fmt.Errorf("subscribe %s: %w", b.setTopic, err)
	}
	// A broker whose rules refuse update/set (an older ACL) must not keep
	// the board offline: it runs on without update jobs.
	if err := b.sess.Subscribe(opCtx, b.updSetTopic, devices.BoardSubscribeQoS); err != nil {
		b.log.Warn("no update jobs", "id", b.id, "err", err)
	}
	// Its own status, to answer a late Last Will (see handleStatus); a
	// Will missed as the connection drops is answered by the next
	// connect's online. Every subscription is at devices.BoardSubscribeQoS
	// (0: see there why). A refusal is a failed connect, as for led/set:
	// NATS refuses while it elects leaders after a node died, and the
	// next broker (or the next attempt) accepts it.
	if err := b.sess.Subscribe(opCtx, b.statusTopic, devices.BoardSubscribeQoS); err != nil {
		return fmt.Errorf("subscribe %s: %w", b.statusTopic, err)
	}
	b.saidOnline = true // from here on it may have: a failure says offline
	for _, m := range [...]Message{
		{Topic: b.statusTopic, Payload: []byte(devices.Online)},
		{Topic: b.infoTopic, Payload: b.info},
		{Topic: b.ledTopic, Payload: []byte(devices.LEDPayload(b.on))},
	} {
		if err := b.sess.Publish(opCtx, m.Topic, m.Payload, 1, true); err != nil {
			return fmt.Errorf("publish %s: %w", m.Topic, err)
		}
	}
	if err := b.resyncUpdate(opCtx); err != nil {
		return err
	}
	if u := b.brokers[i].URL; u != "" {
		b.log.Info("online", "id", b.id, "broker", u)
	} else {
		b.log.Info("online", "id", b.id)
	}
	return nil
}

// drop ends the current connection, if any: it publishes status offline
// first when sayOffline is set, then disconnects cleanly.
func (b *Board) drop(sayOffline bool) error {
	if !b.connected {
		return nil
	}
	b.connected = false
	b.stopTrialTimer() // the trial needs an unbroken connection
	b.gen.Add(1)       // whatever this connection still reports is stale
	ctx, cancel := context.WithTimeout(context.Background(), b.opTimeout)
	defer cancel()
	var err error
	if sayOffline {
		if err = b.sess.Publish(ctx, b.statusTopic, []byte(devices.Offline), 1, true); err != nil {
			err = fmt.Errorf("publish %s offline: %w", b.statusTopic, err)
		}
	}
	if derr := b.sess.Disconnect(ctx); derr != nil {
		b.log.Debug("disconnect", "id", b.id, "err", derr)
	}
	return err
}

// serve runs a live connection until it is lost or ctx is cancelled.
func (b *Board) serve(ctx context.Context, tick Timer) error {
	for {
		var err error
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err = <-b.lost:
			return fmt.Errorf("%w: %w", errLost, err)
		case <-tick.C():
			b.buf = strconv.AppendInt(b.buf[:0], b.count, 10)
			b.count++
			err = b.publish(ctx, b.cntTopic, b.buf, 0, false)
			if b.recheckIn > 0 {
				if b.recheckIn--; b.recheckIn == 0 && err == nil {
					err = b.recheck(ctx)
				}
			}
		case m := <-b.inbox:
			err = b.handle(ctx, m)
		case m := <-b.status:
			err = b.handle(ctx, m)
		case m := <-b.upd.msgs:
			err = b.onUpdate(ctx, m)
		case <-b.upd.trialC:
			b.startConfirm()
		}
		if err != nil {
			return err
		}
	}
}

// wait sleeps for d while disconnected; ticks that fall due meanwhile are
// skipped, update reports recorded for the next connect. It returns nil
// when d is over, ctx's error if ctx was cancelled, or errHandOver.
func (b *Board) wait(ctx context.Context, d time.Duration, tick Timer) error {
	t := b.clock.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C():
			return nil
		case <-tick.C():
		case m := <-b.upd.msgs:
			if err := b.onUpdate(ctx, m); err != nil {
				return err
			}
		}
	}
}

// handle applies one inbound message.
func (b *Board) handle(ctx context.Context, m Message) error {
	switch m.Topic {
	case b.updSetTopic:
		return b.handleUpdate(ctx, m)
	case b.statusTopic:
		return b.handleStatus(ctx, m)
	}
	if m.Topic != b.setTopic {
		b.log.Debug("ignoring message on unexpected topic", "id", b.id, "topic", m.Topic)
		return nil
	}
	if m.Retained {
		b.log.Warn("ignoring retained command (commands must not be retained)", "id", b.id, "payload", string(m.Payload))
		return nil
	}
	cmd, err := devices.ParseCommand(m.Payload)
	if err != nil {
		b.log.Warn("ignoring command", "id", b.id, "err", err)
		return nil
	}
	b.setLED(cmd.Apply(b.on))
	b.log.Info("command", "id", b.id, "cmd", cmd.String(), "led", devices.LEDPayload(b.on))
	return b.publish(ctx, b.ledTopic, []byte(devices.LEDPayload(b.on)), 1, true)
}

// recheck subscribes the board's own status again: the broker resends
// its retained copy (see recheckTicks).
func (b *Board) recheck(ctx context.Context) error {
	opCtx, cancel := context.WithTimeout(ctx, b.opTimeout)
	defer cancel()
	b.rechecking = true
	if err := b.sess.Subscribe(opCtx, b.statusTopic, devices.BoardSubscribeQoS); err != nil {
		return fmt.Errorf("subscribe %s again: %w", b.statusTopic, err)
	}
	return nil
}

// handleStatus answers an `offline` on the board's own status topic, seen
// while connected, with `online` (retained, as at connect): a late Last
// Will of an older session, which clustered brokers can deliver after a
// failover, must not leave a board that is online shown offline. Its own
// `online` and anything else are ignored, so this cannot loop. So is a
// retained copy: that one is what the broker held when the board
// subscribed, and the board's `online` after the SUBACK replaced it; a
// Will published later reaches an established subscription, which
// brokers deliver with RETAIN 0 (MQTT-3.3.1-9). The exception is the
// copy a recheck asked for (see recheckTicks).
func (b *Board) handleStatus(ctx context.Context, m Message) error {
	if m.Retained {
		if !b.rechecking {
			return nil
		}
		b.rechecking = false // the copy the recheck asked for
	}
	if string(m.Payload) != devices.Offline {
		return nil
	}
	if len(b.brokers) > 1 {
		// Look again after answering: a cluster can store one more Will
		// after this online (NATS did, seconds after the board was back).
		b.recheckIn = recheckTicks
	}
	b.log.Warn("own status turned offline while connected; saying online again", "id", b.id)
	return b.publish(ctx, b.statusTopic, []byte(devices.Online), 1, true)
}

// setLED drives the LED; on failure the recorded state stays as it was.
func (b *Board) setLED(on bool) {
	if err := b.led.Set(on); err != nil {
		b.log.Warn("set led", "id", b.id, "on", on, "err", err)
		return
	}
	b.on = on
}

func (b *Board) publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error {
	ctx, cancel := context.WithTimeout(ctx, b.opTimeout)
	defer cancel()
	if err := b.sess.Publish(ctx, topic, payload, qos, retain); err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	return nil
}

// shutdown publishes status offline and disconnects, if connected.
func (b *Board) shutdown() error {
	was := b.connected
	err := b.drop(true)
	if was && err == nil {
		b.log.Info("offline", "id", b.id)
	}
	return err
}

// backoff returns the delay before reconnect attempt n (0 first): uniform
// in [0, min(MaxBackoff, MinBackoff·2ⁿ)).
func (b *Board) backoff(n int) time.Duration {
	limit := b.maxBackoff
	if n < 30 {
		if c := b.minBackoff << n; c > 0 && c < limit {
			limit = c
		}
	}
	return time.Duration(b.rand(int64(limit)))
}

// onMessage is the session's message callback for connection gen; it
// never blocks. A status message of a connection that is no longer the
// current one (the echo of the board's own offline as it drops it) is no
// news about the next one and is dropped.
func (b *Board) onMessage(gen uint32, m Message) {
	if m.Topic == b.statusTopic {
		if b.gen.Load() != gen {
			return
		}
		// Replace what waits: the session delivers one message at a
		// time, so after the drain the send has room.
		select {
		case <-b.status:
		default:
		}
		select {
		case b.status <- m:
		default:
		}
		return
	}
	select {
	case b.inbox <- m:
	default:
		b.log.Warn("board busy, inbound message dropped", "id", b.id, "topic", m.Topic)
	}
}

// onLost is the session's connection-lost callback; it never blocks.
func (b *Board) onLost(gen uint32, err error) {
	if err == nil {
		err = errors.New("connection closed")
	}
	if b.gen.Load() != gen {
		return
	}
	select {
	case b.lost <- err:
	default:
	}
}
