package main

import (
	"bytes"
	"context"
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
	"switchyard/board/pahosession"
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
	if err := runBoards(ctx, c, log); err != nil {
		fmt.Fprintf(stderr, "devicefw: %v\n", err)
		return 1
	}
	return 0
}

// runBoards runs the boards of c until ctx is cancelled.
func runBoards(ctx context.Context, c *config, log *slog.Logger) error {
	base := board.Config{
		Prefix:    c.prefix,
		Firmware:  "devicefw " + version,
		Interval:  c.interval,
		KeepAlive: c.keepalive,
		Username:  c.username,
		Password:  c.password,
		Log:       log,
	}
	if c.sim == 0 {
		cfg := base
		cfg.ID, cfg.Model, cfg.IP = c.id, hostModel(), hostIP()
		if c.gpio != (gpio.Spec{}) {
			led, err := gpio.Open(c.gpio, c.activeLow, "devicefw")
			if err != nil {
				return err
			}
			defer led.Close()
			cfg.LED = led
		}
		b, err := newBoard(cfg, c.broker)
		if err != nil {
			return err
		}
		log.Info("devicefw starting", "version", version, "id", c.id, "broker", c.broker, "led", c.led)
		logStop(log, b.Run(ctx))
		return nil
	}
	boards := make([]*board.Board, c.sim)
	for i := range boards {
		cfg := base
		cfg.ID, cfg.Model = simID(c.id, i+1), "sim"
		b, err := newBoard(cfg, c.broker)
		if err != nil {
			return err
		}
		boards[i] = b
	}
	log.Info("devicefw starting simulated boards", "version", version, "n", c.sim,
		"ids", boards[0].ID()+" ... "+boards[len(boards)-1].ID(), "broker", c.broker)
	var wg sync.WaitGroup
	for _, b := range boards {
		wg.Go(func() { logStop(log, b.Run(ctx)) }) // ends when ctx is cancelled
	}
	wg.Wait()
	return nil
}

func newBoard(cfg board.Config, broker string) (*board.Board, error) {
	sess, err := pahosession.New(pahosession.Options{Broker: broker})
	if err != nil {
		return nil, err
	}
	cfg.Session = sess
	return board.New(cfg)
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
