package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"switchyard/board"
	"switchyard/board/gpio"
	"switchyard/board/update"
	"switchyard/devices"
)

// config is devicefw's parsed and checked command line.
type config struct {
	common
	sim       int
	interval  time.Duration
	keepalive time.Duration
	led       string
	activeLow bool
	version   bool
	gpio      gpio.Spec // when led is a gpio: spec

	updateKey      string
	updateTrial    time.Duration
	updateDeadline time.Duration
	stateDir       string
	simFail        string

	key  ed25519.PublicKey // parsed updateKey; nil for none
	fail update.FailMode   // parsed simFail
}

func parseConfig(args []string, env lookupEnv, stdout io.Writer) (*config, error) {
	c := new(config)
	fs := flag.NewFlagSet("devicefw", flag.ContinueOnError)
	c.register(fs)
	fs.IntVar(&c.sim, "sim", 0, "run this many simulated boards, ids <id>-1 ... <id>-N")
	fs.DurationVar(&c.interval, "interval", board.DefaultInterval, "count period")
	fs.DurationVar(&c.keepalive, "keepalive", board.DefaultKeepAlive, "MQTT keepalive; a board that dies silently shows offline within 1.5 times this")
	fs.StringVar(&c.led, "led", "memory", "the LED: memory, gpio:<line name> (gpio:GPIO17) or gpio:<chip>:<offset> (gpio:gpiochip0:17)")
	fs.BoolVar(&c.activeLow, "active-low", false, "the GPIO LED lights when its line is low")
	fs.BoolVar(&c.version, "version", false, "print the version and exit")
	fs.StringVar(&c.updateKey, "update-key", "", "the control plane's update public key, base64, or @FILE; without it every update is refused")
	fs.DurationVar(&c.updateTrial, "update-trial", update.DefaultTrial, "how long a new build must stay connected before it confirms itself")
	fs.DurationVar(&c.updateDeadline, "update-deadline", update.DefaultDeadline, "how long a new build may take to confirm before it is rolled back")
	fs.StringVar(&c.stateDir, "state-dir", "", "where builds and update state are kept (default "+update.DefaultStateDir+"; with --sim a temporary directory)")
	fs.StringVar(&c.simFail, "sim-update-fail", "", "make every simulated board fail its updates: download, verify, start or confirm")
	fs.Usage = usage(fs, "usage: devicefw [flags]\n       devicefw check --broker URL --id ID [flags]\n\nflags:")
	var err error
	if c.fromEnv, err = parse(fs, args, env, stdout); err != nil {
		return nil, err
	}
	if c.version {
		return c, nil
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *config) validate() error {
	if err := c.common.validate(); err != nil {
		return err
	}
	switch {
	case c.sim < 0:
		return fmt.Errorf("%s: %d is negative", c.opt("sim"), c.sim)
	case c.interval <= 0:
		return fmt.Errorf("%s: %s is not positive", c.opt("interval"), c.interval)
	case c.keepalive < time.Second:
		return fmt.Errorf("%s: %s is less than 1s", c.opt("keepalive"), c.keepalive)
	}
	for _, id := range c.ids() {
		if err := devices.ValidateID(id); err != nil {
			if c.sim > 0 {
				return fmt.Errorf("%s %q with %s %d: %w", c.opt("id"), c.id, c.opt("sim"), c.sim, err)
			}
			return fmt.Errorf("%s: %w", c.opt("id"), err)
		}
	}
	if err := c.validateUpdate(); err != nil {
		return err
	}
	switch {
	case c.led == "memory":
	case strings.HasPrefix(c.led, "gpio:"):
		if c.sim > 0 {
			return fmt.Errorf("%s: simulated boards have memory LEDs; drop --led or --sim", c.opt("led"))
		}
		spec, err := gpio.ParseSpec(c.led)
		if err != nil {
			return err
		}
		c.gpio = spec
	default:
		return fmt.Errorf("%s %q: want memory, gpio:<line name> or gpio:<chip>:<offset>", c.opt("led"), c.led)
	}
	return nil
}

func (c *config) validateUpdate() error {
	var err error
	if c.key, err = update.ParseKey(c.updateKey); err != nil {
		return fmt.Errorf("%s: %w", c.opt("update-key"), err)
	}
	switch {
	case c.updateTrial <= 0:
		return fmt.Errorf("%s: %s is not positive", c.opt("update-trial"), c.updateTrial)
	case c.updateDeadline <= c.updateTrial:
		return fmt.Errorf("%s: %s must exceed %s %s", c.opt("update-deadline"), c.updateDeadline, c.opt("update-trial"), c.updateTrial)
	}
	if c.fail, err = update.ParseFailMode(c.simFail); err != nil {
		return fmt.Errorf("%s: %w", c.opt("sim-update-fail"), err)
	}
	if c.fail != update.FailNone && c.sim == 0 {
		return fmt.Errorf("%s: only simulated boards fail on purpose; add --sim", c.opt("sim-update-fail"))
	}
	return nil
}

// ids returns the device ids to run. For --sim only the first and last are
// checked: they cover every character and the greatest length.
func (c *config) ids() []string {
	switch c.sim {
	case 0:
		return []string{c.id}
	case 1:
		return []string{simID(c.id, 1)}
	}
	return []string{simID(c.id, 1), simID(c.id, c.sim)}
}

func simID(prefix string, n int) string { return prefix + "-" + strconv.Itoa(n) }

// run is devicefw: it returns the exit status.
func run(ctx context.Context, args []string, env lookupEnv, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "check" {
		return runCheck(ctx, args[1:], env, stdout, stderr)
	}
	c, err := parseConfig(args, env, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "devicefw: %v\n", err)
		return 1
	}
	if c.version {
		fmt.Fprintln(stdout, "devicefw", version)
		return 0
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	code, err := runBoards(ctx, c, append([]string{os.Args[0]}, args...), log)
	if err != nil {
		fmt.Fprintf(stderr, "devicefw: %v\n", err)
		return 1
	}
	return code
}

// runBoards runs the boards of c until ctx is cancelled and returns the
// exit status. argv is the command line, for the builds an update starts.
func runBoards(ctx context.Context, c *config, argv []string, log *slog.Logger) (int, error) {
	base := board.Config{
		Prefix:    c.prefix,
		Firmware:  "devicefw " + version,
		Interval:  c.interval,
		KeepAlive: c.keepalive,
		Username:  c.username,
		Password:  c.password,
		Log:       log,
	}
	opts := update.Options{
		StateDir: c.stateDir, Key: c.key, Trial: c.updateTrial, Deadline: c.updateDeadline,
		Version: version, Username: c.username, Password: c.password, Log: log,
	}
	if c.sim == 0 {
		return runBoard(ctx, c, base, opts, argv, log)
	}
	sim, err := update.NewSim(update.SimOptions{Options: opts, Name: "devicefw", Fail: c.fail})
	if err != nil {
		return 1, fmt.Errorf("%s: %w", c.opt("state-dir"), err)
	}
	defer sim.Close()
	cfgs := make([]board.Config, c.sim)
	for i := range cfgs {
		cfg := base
		cfg.ID, cfg.Model = simID(c.id, i+1), "sim"
		brokers, err := c.sessions()
		if err != nil {
			return 1, err
		}
		cfg.Brokers = brokers
		cfgs[i] = cfg
	}
	log.Info("devicefw starting simulated boards", "version", version, "n", c.sim,
		"ids", cfgs[0].ID+" ... "+cfgs[len(cfgs)-1].ID, "broker", redactedList(c.broker), "update_fail", string(c.fail))
	// Board i starts i/N of an interval after the first, as a real fleet's
	// boards never boot in the same millisecond: their connects do not
	// arrive as one burst, and their counts spread over each second, as
	// they do after a rollout has restarted every session.
	var wg sync.WaitGroup
	for i, cfg := range cfgs {
		delay := time.Duration(i) * c.interval / time.Duration(len(cfgs))
		wg.Go(func() { // ends when ctx is cancelled
			t := time.NewTimer(delay)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			logStop(log, sim.Run(ctx, cfg))
		})
	}
	wg.Wait()
	return 0, nil
}

// runBoard runs the one board of a Linux host, which updates itself.
func runBoard(ctx context.Context, c *config, cfg board.Config, opts update.Options, argv []string, log *slog.Logger) (int, error) {
	cfg.ID, cfg.Model, cfg.IP = c.id, hostModel(), hostIP()
	if opts.StateDir == "" {
		opts.StateDir = update.DefaultStateDir
	}
	var openLED func() (board.LED, io.Closer, error)
	if c.gpio != (gpio.Spec{}) {
		openLED = func() (board.LED, io.Closer, error) {
			led, err := gpio.Open(c.gpio, c.activeLow, "devicefw")
			return led, led, err
		}
	}
	brokers, err := c.sessions()
	if err != nil {
		return 1, err
	}
	cfg.Brokers = brokers
	// OpenBinary may exec the current build in place of this process.
	u, err := update.OpenBinary(update.BinaryOptions{Options: opts, Args: argv, Env: os.Environ(), OpenLED: openLED})
	switch {
	case errors.Is(err, update.ErrUnsupported):
		log.Warn("this board cannot update itself", "err", err)
		return runPlain(ctx, c, cfg, openLED, log)
	case err != nil:
		return 1, fmt.Errorf("%s %s: %w", c.opt("state-dir"), opts.StateDir, err)
	}
	defer u.Close()
	log.Info("devicefw starting", "version", version, "id", c.id, "broker", redactedList(c.broker), "led", c.led, "state_dir", opts.StateDir)
	code, err := u.Run(ctx, cfg)
	if err != nil && code == 0 {
		logStop(log, err)
		err = nil
	}
	return code, err
}

// runPlain runs a board that cannot update (no update in its info).
func runPlain(ctx context.Context, c *config, cfg board.Config, openLED func() (board.LED, io.Closer, error), log *slog.Logger) (int, error) {
	if openLED != nil {
		led, closer, err := openLED()
		if err != nil {
			return 1, err
		}
		defer closer.Close()
		cfg.LED = led
	}
	b, err := board.New(cfg)
	if err != nil {
		return 1, err
	}
	log.Info("devicefw starting", "version", version, "id", c.id, "broker", redactedList(c.broker), "led", c.led)
	logStop(log, b.Run(ctx))
	return 0, nil
}

// logStop logs a board's failure to say offline: the exit status stays 0
// (the broker's Will covers it).
func logStop(log *slog.Logger, err error) {
	if err != nil {
		log.Warn("stopped without saying offline", "err", err)
	}
}

// hostModel names the hardware for info.board: the device-tree model on a
// Raspberry Pi and the like, else the OS and architecture.
func hostModel() string {
	if b, err := os.ReadFile("/proc/device-tree/model"); err == nil {
		if m := string(bytes.TrimRight(b, "\x00\n ")); m != "" {
			return m
		}
	}
	return runtime.GOOS + "/" + runtime.GOARCH
}

// hostIP returns the first global unicast IPv4 address of the host, for
// info.ip, or "" if there is none.
func hostIP() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
			return n.IP.String()
		}
	}
	return ""
}
