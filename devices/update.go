package devices

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Firmware updates (v2): the payloads of P/<id>/update/set (an
// UpdateCommand, from the control plane) and P/<id>/update (an
// UpdateReport, from the board).

// UpdateState is the state a board reports in P/<id>/update.
type UpdateState string

// The update states of the contract.
const (
	UpdateDownloading UpdateState = "downloading" // with Progress 0-100
	UpdateVerifying   UpdateState = "verifying"
	UpdateInstalling  UpdateState = "installing"
	UpdateRestarting  UpdateState = "restarting"
	UpdateTrial       UpdateState = "trial"       // the new build runs and has not yet confirmed itself
	UpdateConfirmed   UpdateState = "confirmed"   // the new build confirmed itself
	UpdateFailed      UpdateState = "failed"      // nothing changed; Error says why
	UpdateRolledBack  UpdateState = "rolled_back" // the previous build runs again; Error says why
)

// updateStates lists every UpdateState, in the order a job goes through them.
var updateStates = []UpdateState{
	UpdateDownloading, UpdateVerifying, UpdateInstalling, UpdateRestarting,
	UpdateTrial, UpdateConfirmed, UpdateFailed, UpdateRolledBack,
}

// Valid reports whether s is one of the contract's states.
func (s UpdateState) Valid() bool {
	for _, v := range updateStates {
		if s == v {
			return true
		}
	}
	return false
}

// Final reports whether s ends a job: confirmed, failed or rolled_back.
func (s UpdateState) Final() bool {
	return s == UpdateConfirmed || s == UpdateFailed || s == UpdateRolledBack
}

// The error words of the contract, in an UpdateReport's Error. A board may
// add detail after a colon ("checksum: want …, got …"); UpdateErrorIs
// compares the word.
const (
	UpdateErrSize        = "size"
	UpdateErrChecksum    = "checksum"
	UpdateErrSignature   = "signature"
	UpdateErrNoKey       = "no update key"
	UpdateErrPlatform    = "unsupported platform"
	UpdateErrDownload    = "download"
	UpdateErrUnsupported = "unsupported"
	UpdateErrBusy        = "busy"
	UpdateErrCrashed     = "crashed"
	UpdateErrNeverConn   = "never connected"
	UpdateErrInterrupted = "interrupted"
	UpdateErrNoPrevious  = "no previous build"
)

// UpdateErrorIs reports whether a report's error text is the contract's
// word (alone or followed by ": detail").
func UpdateErrorIs(text, word string) bool {
	return text == word || strings.HasPrefix(text, word+":")
}

// The update methods a board names in info's "update".
const (
	UpdateMethodBinary = "binary" // devicefw on Linux replaces its own executable
	UpdateMethodSim    = "sim"    // a simulated board
)

// PlatformSim is info's "platform" of simulated boards.
const PlatformSim = "sim"

// UpdateReport is the payload of P/<id>/update:
// {"job","state","version","running","progress","error"}.
type UpdateReport struct {
	Job      string      `json:"job"`
	State    UpdateState `json:"state"`
	Version  string      `json:"version"` // the version being installed
	Running  string      `json:"running"` // the version running now
	Progress int         `json:"progress"`
	Error    string      `json:"error,omitempty"`
}

// MaxUpdateSize bounds an update or update/set payload.
const MaxUpdateSize = 4096

// ParseUpdateReport parses and checks an update payload.
func ParseUpdateReport(p []byte) (UpdateReport, error) {
	var r UpdateReport
	if err := decodeUpdate(p, &r); err != nil {
		return UpdateReport{}, fmt.Errorf("%w: update: %v", ErrBadPayload, err)
	}
	switch {
	case !r.State.Valid():
		return UpdateReport{}, fmt.Errorf("%w: update: unknown state %q", ErrBadPayload, r.State)
	case r.Progress < 0 || r.Progress > 100:
		return UpdateReport{}, fmt.Errorf("%w: update: progress %d outside 0-100", ErrBadPayload, r.Progress)
	}
	return r, nil
}

// AppendJSON appends r as its JSON object.
func (r UpdateReport) AppendJSON(b []byte) []byte {
	j, _ := json.Marshal(r) // strings and an int: cannot fail
	return append(b, j...)
}

// UpdateActionRollback is an UpdateCommand's Action that switches back to
// the previous build without a download.
const UpdateActionRollback = "rollback"

// UpdateCommand is the payload of P/<id>/update/set: a job to install
// Version from URL ({"job","version","url","sha256","size","signature"}),
// or, with Action "rollback", to switch back ({"job","action":"rollback"}).
type UpdateCommand struct {
	Job       string `json:"job"`
	Action    string `json:"action,omitempty"`
	Version   string `json:"version,omitempty"`
	URL       string `json:"url,omitempty"`
	SHA256    string `json:"sha256,omitempty"`    // lowercase hex of the bytes
	Size      int64  `json:"size,omitempty"`      // bytes
	Signature string `json:"signature,omitempty"` // base64 ed25519 over the 32 raw digest bytes
}

// Rollback reports whether c asks for a rollback.
func (c UpdateCommand) Rollback() bool { return c.Action == UpdateActionRollback }

// Digest returns the 32 raw bytes of c.SHA256 (valid after
// ParseUpdateCommand).
func (c UpdateCommand) Digest() []byte {
	d, _ := hex.DecodeString(c.SHA256)
	return d
}

// SignatureBytes returns the decoded signature (valid after
// ParseUpdateCommand).
func (c UpdateCommand) SignatureBytes() []byte {
	s, _ := base64.StdEncoding.DecodeString(c.Signature)
	return s
}

// ParseUpdateCommand parses and checks an update/set payload: a job id
// always; for an install a version, an http(s) URL, a SHA-256 in lowercase
// hex, a positive size and a base64 signature of 64 bytes.
func ParseUpdateCommand(p []byte) (UpdateCommand, error) {
	var c UpdateCommand
	if err := decodeUpdate(p, &c); err != nil {
		return UpdateCommand{}, fmt.Errorf("%w: update/set: %v", ErrBadPayload, err)
	}
	if err := c.check(); err != nil {
		return UpdateCommand{}, fmt.Errorf("%w: update/set: %v", ErrBadPayload, err)
	}
	return c, nil
}

func (c UpdateCommand) check() error {
	switch {
	case c.Job == "":
		return errors.New("no job")
	case c.Action == UpdateActionRollback:
		return nil
	case c.Action != "":
		return fmt.Errorf("unknown action %q", c.Action)
	case c.Version == "":
		return errors.New("no version")
	case !strings.HasPrefix(c.URL, "http://") && !strings.HasPrefix(c.URL, "https://"):
		return fmt.Errorf("url %q is not http:// or https://", c.URL)
	case !ValidSHA256(c.SHA256):
		return fmt.Errorf("sha256 %q is not 64 lowercase hex digits", c.SHA256)
	case c.Size <= 0:
		return fmt.Errorf("size %d is not positive", c.Size)
	}
	if s, err := base64.StdEncoding.DecodeString(c.Signature); err != nil || len(s) != 64 {
		return fmt.Errorf("signature %q is not base64 of 64 bytes", c.Signature)
	}
	return nil
}

// AppendJSON appends c as its JSON object.
func (c UpdateCommand) AppendJSON(b []byte) []byte {
	j, _ := json.Marshal(c) // strings and an int: cannot fail
	return append(b, j...)
}

// ValidSHA256 reports whether s is a SHA-256 digest in lowercase hex, as in
// update jobs and GET /firmware/<sha256>.
func ValidSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// RunsVersion reports whether a board whose info says firmware runs
// version: firmware is version, or ends in " "+version (devicefw reports
// "devicefw 1.2").
func RunsVersion(firmware, version string) bool {
	return version != "" && (firmware == version || strings.HasSuffix(firmware, " "+version))
}

// decodeUpdate decodes one JSON object of at most MaxUpdateSize bytes into v.
func decodeUpdate(p []byte, v any) error {
	if len(p) > MaxUpdateSize {
		return fmt.Errorf("larger than %d bytes", MaxUpdateSize)
	}
	p = trimSpaceBytes(p)
	if len(p) == 0 || p[0] != '{' {
		return errors.New("not a JSON object")
	}
	if err := json.Unmarshal(p, v); err != nil {
		return err
	}
	return nil
}
