package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

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
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.broker, "broker", "tcp://localhost:1883", "MQTT broker URL: tcp://, ssl://, ws:// or wss://")
	fs.StringVar(&c.id, "id", defaultID(), "device id (with --sim, the prefix of the ids)")
	fs.StringVar(&c.prefix, "prefix", devices.DefaultPrefix, "topic prefix")
	fs.StringVar(&c.username, "username", "", "MQTT user name")
	fs.StringVar(&c.password, "password", "", "MQTT password")
}

func (c *common) validate() error {
	if err := pahosession.ValidateBroker(c.broker); err != nil {
		return fmt.Errorf("--broker: %w", err)
	}
	if err := devices.ValidatePrefix(c.prefix); err != nil {
		return fmt.Errorf("--prefix: %w", err)
	}
	return nil
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

// parse sets fs from the environment, then from args (which win). It
// returns flag.ErrHelp after printing usage to stdout for -h.
func parse(fs *flag.FlagSet, args []string, env lookupEnv, stdout io.Writer) error {
	fs.SetOutput(io.Discard) // errors are reported on one line by the caller
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "version" || envErr != nil {
			return
		}
		if v, ok := env(envName(f.Name)); ok {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%s: invalid value %q: %v", envName(f.Name), v, err)
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
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
