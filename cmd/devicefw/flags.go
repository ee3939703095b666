package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"switchyard/board"
	"switchyard/board/pahosession"
	"switchyard/devices"
)

// envPrefix prefixes the environment variable of every flag:
// --keepalive is DEVICEFW_KEEPALIVE, --active-low DEVICEFW_ACTIVE_LOW.
const envPrefix = "DEVICEFW_"

// lookupEnv is os.LookupEnv, or a stand-in in tests.
type lookupEnv func(string) (string, bool)

// common are the flags of both devicefw and devicefw check.
type common struct {
	broker, id, prefix string
	username, password string
	brokers            []string // broker split into its URLs (set by validate)

	fromEnv map[string]bool // flags whose value came from the environment (set by parse)
}

// opt names the setting of flag in an error: its environment variable when
// the value came from there, else --flag.
func (c *common) opt(flag string) string {
	if c.fromEnv[flag] {
		return envName(flag)
	}
	return "--" + flag
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.broker, "broker", "tcp://localhost:1883", "MQTT broker URL (tcp://, ssl://, ws:// or wss://), or several separated by commas to fail over between")
	fs.StringVar(&c.id, "id", defaultID(), "device id (with --sim, the prefix of the ids)")
	fs.StringVar(&c.prefix, "prefix", devices.DefaultPrefix, "topic prefix")
	fs.StringVar(&c.username, "username", "", "MQTT user name")
	fs.StringVar(&c.password, "password", "", "MQTT password")
}

func (c *common) validate() error {
	c.brokers = c.brokers[:0]
	for u := range strings.SplitSeq(c.broker, ",") {
		u = strings.TrimSpace(u)
		if u == "" {
			return fmt.Errorf("%s: empty URL in the list %q", c.opt("broker"), redactedList(c.broker))
		}
		if err := pahosession.ValidateBroker(u); err != nil {
			return fmt.Errorf("%s: %w", c.opt("broker"), err)
		}
		c.brokers = append(c.brokers, u)
	}
	if err := devices.ValidatePrefix(c.prefix); err != nil {
		return fmt.Errorf("%s: %w", c.opt("prefix"), err)
	}
	return nil
}

// sessions returns a new session to each broker of c, for one board or
// one check. With several brokers each connect is bounded by
// board.FailoverConnectTimeout, so a dead node does not hold up the next.
func (c *common) sessions() ([]board.Broker, error) {
	var timeout time.Duration // one broker: pahosession's default
	if len(c.brokers) > 1 {
		timeout = board.FailoverConnectTimeout
	}
	out := make([]board.Broker, len(c.brokers))
	for i, u := range c.brokers {
		s, err := pahosession.New(pahosession.Options{Broker: u, ConnectTimeout: timeout})
		if err != nil {
			return nil, err
		}
		out[i] = board.Broker{URL: redacted(u), Session: s}
	}
	return out, nil
}

// redactedList is a --broker list with the password of each URL, if any,
// shown as xxxxx.
func redactedList(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		parts[i] = redacted(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

// defaultID is the host name made into a valid device id.
func defaultID() string {
	h, _ := os.Hostname()
	return devices.SanitizeID(h)
}

// envName returns the environment variable of a flag.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parse sets fs from the environment, then from args (which win), and
// returns the flags whose value came from the environment. It returns
// flag.ErrHelp after printing usage to stdout for -h.
func parse(fs *flag.FlagSet, args []string, env lookupEnv, stdout io.Writer) (map[string]bool, error) {
	fs.SetOutput(io.Discard) // errors are reported on one line by the caller
	fromEnv := map[string]bool{}
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "version" || envErr != nil {
			return
		}
		if v, ok := env(envName(f.Name)); ok {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%s: invalid value %q: %v", envName(f.Name), v, err)
			}
			fromEnv[f.Name] = true
		}
		f.Value = argValue{f.Value, f.Name, fromEnv} // from here on, a Set is from args
	})
	if envErr != nil {
		return nil, envErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return fromEnv, nil
}

// argValue is a flag's value while the command line is parsed: a value
// set there no longer comes from the environment.
type argValue struct {
	flag.Value
	name    string
	fromEnv map[string]bool
}

func (v argValue) Set(s string) error {
	delete(v.fromEnv, v.name)
	return v.Value.Set(s)
}

// IsBoolFlag keeps bool flags usable without a value (--active-low).
func (v argValue) IsBoolFlag() bool {
	b, ok := v.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// usage returns a Usage function printing head and the flags with their
// environment variables.
func usage(fs *flag.FlagSet, head string) func() {
	return func() {
		w := fs.Output()
		fmt.Fprintln(w, head)
		fs.VisitAll(func(f *flag.Flag) {
			env := ""
			if f.Name != "version" {
				env = " (env " + envName(f.Name) + ")"
			}
			def := ""
			if f.DefValue != "" && f.DefValue != "false" {
				def = " (default " + f.DefValue + ")"
			}
			fmt.Fprintf(w, "  --%s\n    \t%s%s%s\n", f.Name, f.Usage, def, env)
		})
	}
}
