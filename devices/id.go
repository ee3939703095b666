package devices

import (
	"errors"
	"fmt"
)

// MaxIDLen is the longest valid device id.
const MaxIDLen = 64

// ErrInvalidID is wrapped by every device-id validation error.
var ErrInvalidID = errors.New("invalid device id")

// ValidateID reports whether id is a valid device id: 1 to 64 characters of
// A-Z, a-z, 0-9, '_' and '-', case-sensitive.
func ValidateID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrInvalidID)
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("%w %.20q...: longer than %d characters", ErrInvalidID, id, MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		if !idChar(id[i]) {
			return fmt.Errorf("%w %q: character %q not allowed (use A-Z a-z 0-9 _ -)", ErrInvalidID, id, id[i])
		}
	}
	return nil
}

// ValidID is ValidateID as a boolean, for hot paths that drop invalid ids.
func ValidID(id string) bool { return validID(id) }

func validID[S string | []byte](id S) bool {
	if len(id) == 0 || len(id) > MaxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !idChar(id[i]) {
			return false
		}
	}
	return true
}

func idChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// SanitizeID turns s (a host name, say) into a valid device id: every byte
// outside the id alphabet becomes '-', and the result is cut to 64 bytes. It
// returns "board" for an empty s.
func SanitizeID(s string) string {
	if s == "" {
		return "board"
	}
	if len(s) > MaxIDLen {
		s = s[:MaxIDLen]
	}
	b := []byte(s)
	for i, c := range b {
		if !idChar(c) {
			b[i] = '-'
		}
	}
	return string(b)
}
