package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"sync"

	"switchyard/board"
	"switchyard/board/check"
	"switchyard/devices"
)

// runCheck is `devicefw check`: it returns 0 only if every rule passed.
func runCheck(ctx context.Context, args []string, env lookupEnv, stdout, stderr io.Writer) int {
	var c common
	fs := flag.NewFlagSet("devicefw check", flag.ContinueOnError)
	c.register(fs)
	timeout := fs.Duration("timeout", check.DefaultTimeout, "how long to wait for the board's status")
	fs.Usage = usage(fs, "usage: devicefw check --broker URL --id ID [flags]\n\n"+
		"Checks a live board against the Switchyard wire contract; prints PASS or FAIL per rule.\n\nflags:")
	fromEnv, err := parse(fs, args, env, stdout)
	c.fromEnv = fromEnv
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err == nil {
		err = c.validate()
	}
	if err == nil {
		err = devices.ValidateID(c.id)
	}
	if err == nil && *timeout <= 0 {
		err = fmt.Errorf("%s: %s is not positive", c.opt("timeout"), *timeout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "devicefw check: %v\n", err)
		return 1
	}
	topics, err := devices.NewTopics(c.prefix)
	if err != nil {
		fmt.Fprintf(stderr, "devicefw check: %v\n", err)
		return 1
	}
	brokers, err := c.sessions()
	if err != nil {
		fmt.Fprintf(stderr, "devicefw check: %v\n", err)
		return 1
	}
	sess := brokers[0].Session
	if len(brokers) > 1 {
		sess = &firstOf{all: brokers}
	}
	// Said at once: with no board, the first result comes only after the
	// whole timeout.
	fmt.Fprintf(stdout, "waiting up to %s for board %s on %s (status online on %s)\n",
		*timeout, c.id, redactedList(c.broker), topics.Status(c.id))
	ok, err := check.Run(ctx, check.Config{
		ID:       c.id,
		Prefix:   c.prefix,
		Session:  sess,
		ClientID: "devicefw-check-" + randomHex(),
		Username: c.username,
		Password: c.password,
		Timeout:  *timeout,
	}, func(r check.Result) { fmt.Fprintln(stdout, r) })
	if err != nil {
		fmt.Fprintf(stderr, "devicefw check: %v\n", err)
		return 1
	}
	if !ok {
		return 1
	}
	return 0
}

// redacted is the broker URL without its password, if it has one.
func redacted(broker string) string {
	u, err := url.Parse(broker)
	if err != nil {
		return broker // validated already; not reached
	}
	return u.Redacted()
}

// firstOf is the session of a check given several brokers: Connect tries
// them in order and keeps the first that accepts; the rest goes to that
// one. mu guards cur.
type firstOf struct {
	all []board.Broker
	mu  sync.Mutex
	cur board.Session // the connected one; nil while not connected
}

func (f *firstOf) Connect(ctx context.Context, o board.ConnectOptions) error {
	var errs []error
	for _, b := range f.all {
		if err := b.Session.Connect(ctx, o); err != nil {
			errs = append(errs, err)
			continue
		}
		f.mu.Lock()
		f.cur = b.Session
		f.mu.Unlock()
		return nil
	}
	return errors.Join(errs...)
}

func (f *firstOf) current() (board.Session, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur == nil {
		return nil, board.ErrNotConnected
	}
	return f.cur, nil
}

func (f *firstOf) Subscribe(ctx context.Context, filter string, qos byte) error {
	s, err := f.current()
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", filter, err)
	}
	return s.Subscribe(ctx, filter, qos)
}

func (f *firstOf) Publish(ctx context.Context, topic string, payload []byte, qos byte, retain bool) error {
	s, err := f.current()
	if err != nil {
		return fmt.Errorf("publish %s: %w", topic, err)
	}
	return s.Publish(ctx, topic, payload, qos, retain)
}

func (f *firstOf) Disconnect(ctx context.Context) error {
	f.mu.Lock()
	s := f.cur
	f.cur = nil
	f.mu.Unlock()
	if s == nil {
		return nil
	}
	return s.Disconnect(ctx)
}

func randomHex() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
