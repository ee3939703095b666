// Package check verifies a live board against the Switchyard wire contract,
// as an MQTT observer: it is `devicefw check`. It works with any board that
// speaks the contract (devicefw, TinyGo, Arduino, ESPHome, Tasmota set to
// these topics), since all it uses is the broker.
package check

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"switchyard/board"
	"switchyard/devices"
)

// The rules, in the order they are checked and reported.
const (
	RuleStatus = "status-online"   // a retained status of online
	RuleLED    = "led-retained"    // a retained led of ON or OFF
	RuleInfo   = "info-fields"     // info is a JSON object with id, firmware and board
	RuleCount  = "count-rising"    // count rises at about the board's interval
	RuleToggle = "toggle-answered" // TOGGLE answered by the flipped led within AnswerTimeout
	RuleOn     = "on-confirmed"    // ON confirmed by led ON, also when already on
	RuleOff    = "off-confirmed"   // OFF confirmed by led OFF, also when already off
)

// Rules lists every rule in order.
var Rules = []string{RuleStatus, RuleLED, RuleInfo, RuleCount, RuleToggle, RuleOn, RuleOff}

// Defaults of Config.
const (
	DefaultTimeout       = 30 * time.Second
	DefaultAnswerTimeout = 2 * time.Second
)

// Config says which board to check, and how.
type Config struct {
	ID       string        // the board's device id
	Prefix   string        // topic prefix, empty for devices.DefaultPrefix
	Session  board.Session // an unconnected session to the broker
	ClientID string        // the observer's MQTT client id
	Username string
	Password string
	// Timeout bounds the wait for the board's status (default
	// DefaultTimeout); AnswerTimeout bounds the wait for each answer to a
	// command and for the retained led and info (default
	// DefaultAnswerTimeout).
	Timeout       time.Duration
	AnswerTimeout time.Duration
}

// Result is the outcome of one rule.
type Result struct {
	Rule string
	OK   bool
	Why  string // why it failed
}

// String formats r as `PASS <rule>` or `FAIL <rule>: <why>`.
func (r Result) String() string {
	if r.OK {
		return "PASS " + r.Rule
	}
	return "FAIL " + r.Rule + ": " + r.Why
}

// Run checks the board and calls report once per rule, in the order of
// Rules. It returns whether every rule passed. An error (a bad Config) is
// returned before any rule is reported.
func Run(ctx context.Context, cfg Config, report func(Result)) (bool, error) {
	if err := devices.ValidateID(cfg.ID); err != nil {
		return false, fmt.Errorf("check: %w", err)
	}
	topics, err := devices.NewTopics(cfg.Prefix)
	if err != nil {
		return false, fmt.Errorf("check: %w", err)
	}
	if cfg.Session == nil {
		return false, errors.New("check: no MQTT session")
	}
	c := &checker{
		cfg:    cfg,
		topics: topics,
		inbox:  make(chan board.Message, 1024),
		lost:   make(chan error, 1),
		report: report,
		all:    true,
	}
	if c.cfg.Timeout <= 0 {
		c.cfg.Timeout = DefaultTimeout
	}
	if c.cfg.AnswerTimeout <= 0 {
		c.cfg.AnswerTimeout = DefaultAnswerTimeout
	}
	c.run(ctx)
	return c.all, nil
}

type checker struct {
	cfg    Config
	topics devices.Topics
	inbox  chan board.Message
	lost   chan error
	report func(Result)
	all    bool // every rule so far passed
	done   int  // rules reported

	// What the board has said so far.
	status, led, info *board.Message
	counts            []countAt
}

type countAt struct {
	n  int64
	at time.Time
}

func (c *checker) pass() {
	c.report(Result{Rule: Rules[c.done], OK: true})
	c.done++
}

func (c *checker) fail(format string, args ...any) {
	c.report(Result{Rule: Rules[c.done], Why: fmt.Sprintf(format, args...)})
	c.done++
	c.all = false
}

// failRest fails every rule not yet reported.
func (c *checker) failRest(why string) {
	for c.done < len(Rules) {
		c.fail("not checked: %s", why)
	}
}

func (c *checker) run(ctx context.Context) {
	if err := c.connect(ctx); err != nil {
		c.fail("%v", err)
		c.failRest("no broker connection")
		return
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.AnswerTimeout)
		defer cancel()
		_ = c.cfg.Session.Disconnect(dctx)
	}()

	if !c.checkStatus(ctx) {
		c.failRest("the board is not online")
		return
	}
	c.checkRetained(ctx)
	c.checkCount(ctx)
	on, known := false, c.led != nil
	if known {
		on, _ = devices.ParseLED(c.led.Payload)
	}
	if !c.checkToggle(ctx, on, known) {
		c.failRest("the board does not answer commands")
		return
	}
	c.checkSet(ctx, devices.CmdOn)
	c.checkSet(ctx, devices.CmdOff)
	if known && on { // leave the LED as it was found
		_ = c.command(ctx, devices.CmdOn)
	}
}

func (c *checker) connect(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	err := c.cfg.Session.Connect(cctx, board.ConnectOptions{
		ClientID:  c.cfg.ClientID,
		Username:  c.cfg.Username,
		Password:  c.cfg.Password,
		KeepAlive: 30 * time.Second,
		OnMessage: func(m board.Message) {
			select {
			case c.inbox <- m:
			default: // a flood; the rules that need it fail for want of it
			}
		},
		OnLost: func(err error) {
			select {
			case c.lost <- err:
			default:
			}
		},
	})
	if err != nil {
		return fmt.Errorf("cannot connect to the broker: %w", err)
	}
	filter := c.topics.DeviceFilter(c.cfg.ID)
	if err := c.cfg.Session.Subscribe(cctx, filter, 1); err != nil {
		_ = c.cfg.Session.Disconnect(ctx)
		return fmt.Errorf("cannot subscribe to %s: %w", filter, err)
	}
	return nil
}

// errTimeout is wait's error when d elapses first.
var errTimeout = errors.New("timeout")

// wait records every message from the board for up to d, until until
// returns true for one; it returns errTimeout if none did.
func (c *checker) wait(ctx context.Context, d time.Duration, until func(devices.Kind, board.Message) bool) error {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-c.lost:
			return fmt.Errorf("broker connection lost: %w", err)
		case <-t.C:
			return errTimeout
		case m := <-c.inbox:
			id, kind, ok := c.topics.Parse(m.Topic)
			if !ok || id != c.cfg.ID {
				continue
			}
			switch kind {
			case devices.KindStatus:
				c.status = &m
			case devices.KindLED:
				c.led = &m
			case devices.KindInfo:
				c.info = &m
			case devices.KindCount:
				if n, err := devices.ParseCount(m.Payload); err == nil {
					c.counts = append(c.counts, countAt{n, time.Now()})
				}
			}
			if until != nil && until(kind, m) {
				return nil
			}
		}
	}
}

func (c *checker) checkStatus(ctx context.Context) bool {
	err := c.wait(ctx, c.cfg.Timeout, func(k devices.Kind, m board.Message) bool {
		online, err := devices.ParseStatus(m.Payload)
		return k == devices.KindStatus && err == nil && online
	})
	switch {
	case err == nil:
		c.pass()
		return true
	case c.status == nil && errors.Is(err, errTimeout):
		c.fail("no retained status within %s: is the board running, with this id and prefix?", c.cfg.Timeout)
	case c.status != nil:
		c.fail("status is %q, not online, after %s", c.status.Payload, c.cfg.Timeout)
	default:
		c.fail("%v", err)
	}
	return false
}

// checkRetained checks led and info, which a board publishes retained right
// after its status.
func (c *checker) checkRetained(ctx context.Context) {
	_ = c.wait(ctx, c.cfg.AnswerTimeout, func(devices.Kind, board.Message) bool {
		return c.led != nil && c.info != nil
	})
	switch {
	case c.led == nil:
		c.fail("no led within %s of the status", c.cfg.AnswerTimeout)
	default:
		if _, err := devices.ParseLED(c.led.Payload); err != nil {
			c.fail("%v", err)
		} else {
			c.pass()
		}
	}
	if c.info == nil {
		c.fail("no info within %s of the status", c.cfg.AnswerTimeout)
		return
	}
	info, err := devices.ParseInfo(c.info.Payload)
	switch {
	case err != nil:
		c.fail("%v", err)
	case info.ID != c.cfg.ID:
		c.fail("info id is %q, want %q", info.ID, c.cfg.ID)
	case info.Firmware == "" || info.Board == "":
		c.fail(`info lacks "firmware" or "board" (strings): %s`, info.Raw)
	default:
		c.pass()
	}
}

// interval is the board's count period from its info, else one second.
func (c *checker) interval() time.Duration {
	var v struct {
		IntervalMS int64 `json:"interval_ms"`
	}
	if c.info != nil && json.Unmarshal(c.info.Payload, &v) == nil && v.IntervalMS > 0 {
		return time.Duration(v.IntervalMS) * time.Millisecond
	}
	return time.Second
}

// checkCount watches four counts (three periods) and checks that they rise
// at about the interval.
func (c *checker) checkCount(ctx context.Context) {
	const want = 4
	iv := c.interval()
	c.counts = c.counts[:0] // measure from now on
	err := c.wait(ctx, want*iv+c.cfg.AnswerTimeout, func(k devices.Kind, _ board.Message) bool {
		return len(c.counts) >= want
	})
	if err != nil {
		c.fail("%d of %d counts within %s (interval %s)", len(c.counts), want, want*iv+c.cfg.AnswerTimeout, iv)
		return
	}
	for i := 1; i < len(c.counts); i++ {
		if c.counts[i].n <= c.counts[i-1].n {
			c.fail("count went from %d to %d", c.counts[i-1].n, c.counts[i].n)
			return
		}
	}
	first, last := c.counts[0], c.counts[len(c.counts)-1]
	period := last.at.Sub(first.at) / time.Duration(len(c.counts)-1)
	if period < iv/2 || period > iv*3/2 {
		c.fail("a count every %s, want about %s", period.Round(time.Millisecond), iv)
		return
	}
	c.pass()
}

// command publishes a led/set command, after forgetting what came before.
func (c *checker) command(ctx context.Context, cmd devices.Command) error {
	for drained := false; !drained; {
		select {
		case <-c.inbox:
		default:
			drained = true
		}
	}
	pctx, cancel := context.WithTimeout(ctx, c.cfg.AnswerTimeout)
	defer cancel()
	topic := c.topics.LEDSet(c.cfg.ID)
	if err := c.cfg.Session.Publish(pctx, topic, []byte(cmd.Payload()), 1, false); err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	return nil
}

// answer sends cmd and waits for the led to say want.
func (c *checker) answer(ctx context.Context, cmd devices.Command, want bool) error {
	if err := c.command(ctx, cmd); err != nil {
		return err
	}
	c.led = nil
	err := c.wait(ctx, c.cfg.AnswerTimeout, func(k devices.Kind, m board.Message) bool {
		on, err := devices.ParseLED(m.Payload)
		return k == devices.KindLED && err == nil && on == want
	})
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, errTimeout):
		return err
	case c.led != nil:
		return fmt.Errorf("%s answered with led %q, want %s", cmd, c.led.Payload, devices.LEDPayload(want))
	}
	return fmt.Errorf("no led within %s after %s", c.cfg.AnswerTimeout, cmd)
}

func (c *checker) checkToggle(ctx context.Context, on, known bool) bool {
	if !known {
		c.fail("led state unknown, cannot tell a toggle")
		return false
	}
	if err := c.answer(ctx, devices.CmdToggle, !on); err != nil {
		c.fail("%v", err)
		return false
	}
	c.pass()
	return true
}

// checkSet sends cmd twice: the second is a no-op the board must still
// confirm.
func (c *checker) checkSet(ctx context.Context, cmd devices.Command) {
	want := cmd.Apply(false)
	for i, what := range []string{"", " (again, already " + devices.LEDPayload(want) + ")"} {
		if err := c.answer(ctx, cmd, want); err != nil {
			if i == 1 {
				c.fail("%v%s: a board confirms a command even when nothing changes", err, what)
			} else {
				c.fail("%v", err)
			}
			return
		}
	}
	c.pass()
}
