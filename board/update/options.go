package update

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"switchyard/board"
)

// Defaults of the update options.
const (
	DefaultTrial    = 60 * time.Second // --update-trial
	DefaultDeadline = 5 * time.Minute  // --update-deadline
	DefaultStateDir = "/var/lib/devicefw"
)

// ErrUnsupported is what OpenBinary returns where devicefw cannot update
// itself (outside Linux).
var ErrUnsupported = errors.New("binary updates need Linux")

// Options are what both updaters need.
type Options struct {
	StateDir string            // builds, downloads and state (see state.go)
	Key      ed25519.PublicKey // the update key; nil: every update is refused ("no update key")
	Trial    time.Duration     // default DefaultTrial
	Deadline time.Duration     // default DefaultDeadline; must exceed Trial
	Version  string            // the version this build runs
	// Username and Password go with every download as HTTP Basic
	// credentials when set (the board's MQTT credentials: the control
	// plane serves /firmware/<sha256> to the device role).
	Username, Password string
	Log                *slog.Logger // default discards
	HTTPClient         *http.Client // default: one with connect and header timeouts
}

func (o *Options) setDefaults() error {
	if o.Trial <= 0 {
		o.Trial = DefaultTrial
	}
	if o.Deadline <= 0 {
		o.Deadline = DefaultDeadline
	}
	if o.Deadline <= o.Trial {
		return fmt.Errorf("update deadline %s must exceed the trial %s", o.Deadline, o.Trial)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.HTTPClient == nil {
		o.HTTPClient = defaultHTTPClient()
	}
	return nil
}

// defaultHTTPClient is the downloads' client when none is given: connect
// and header timeouts, no compression (the bytes as stored: Content-Length
// is the size).
func defaultHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = 30 * time.Second
	t.DisableCompression = true
	return &http.Client{Transport: t}
}

// BinaryOptions configure the Linux binary updater.
type BinaryOptions struct {
	Options
	// Args and Env are the process's command line (os.Args) and
	// environment (os.Environ()): the next build gets the same.
	Args []string
	Env  []string
	// OpenLED opens the board's LED; the LED is closed while a child build
	// runs, since only one process may hold a GPIO line. Nil: an LED in
	// memory.
	OpenLED func() (board.LED, io.Closer, error)
}
