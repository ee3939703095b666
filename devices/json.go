package devices

import (
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// A small, strict JSON reader and writer, so that this package (and the board
// firmware that imports it) needs no encoding/json and no reflection. It
// validates RFC 8259 JSON and decodes the string members of one object; the
// tests check it against encoding/json.

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 32

var (
	errNotObject  = errors.New("not a JSON object")
	errSyntax     = errors.New("invalid JSON")
	errTooDeep    = errors.New("JSON nested too deeply")
	errTrailing   = errors.New("invalid JSON: data after the object")
	errBadUTF8    = errors.New("invalid JSON: invalid UTF-8")
	errBadEscape  = errors.New("invalid JSON: bad escape in string")
	errUnterminal = errors.New("invalid JSON: unterminated string")
)

// scanObject validates b as exactly one JSON object (white space around it
// allowed) and returns its top-level members whose values are strings,
// decoded. Later duplicate keys win.
func scanObject(b []byte) (map[string]string, error) {
	fields, _, err := scan(b, false)
	return fields, err
}

// scanObjectNumbers is scanObject that also returns the top-level members
// whose values are numbers, as their JSON text ("1000", "-2.5e3").
func scanObjectNumbers(b []byte) (fields, numbers map[string]string, err error) {
	return scan(b, true)
}

func scan(b []byte, withNumbers bool) (map[string]string, map[string]string, error) {
	s := scanner{b: b}
	if withNumbers {
		s.nums = map[string]string{}
	}
	s.skipSpace()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return nil, nil, errNotObject
	}
	fields := map[string]string{}
	if err := s.object(0, fields); err != nil {
		return nil, nil, err
	}
	s.skipSpace()
	if s.i != len(s.b) {
		return nil, nil, errTrailing
	}
	return fields, s.nums, nil
}

type scanner struct {
	b    []byte
	i    int
	nums map[string]string // nil, or the top-level number members (see scanObjectNumbers)
}

func (s *scanner) skipSpace() {
	for s.i < len(s.b) && isSpace(s.b[s.i]) {
		s.i++
	}
}

// object reads an object at s.i (which is '{'); when fields is non-nil it
// records the string members.
func (s *scanner) object(depth int, fields map[string]string) error {
	if empty, err := s.open(depth, '}'); empty || err != nil {
		return err
	}
	for {
		s.skipSpace()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return errSyntax
		}
		key, err := s.str(true)
		if err != nil {
			return err
		}
		s.skipSpace()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return errSyntax
		}
		s.i++
		s.skipSpace()
		if fields != nil && s.i < len(s.b) && s.b[s.i] == '"' {
			v, err := s.str(true)
			if err != nil {
				return err
			}
			fields[key] = v
			if s.nums != nil {
				delete(s.nums, key) // a later string value wins
			}
		} else {
			start := s.i
			if err := s.value(depth + 1); err != nil {
				return err
			}
			if fields != nil {
				delete(fields, key) // a later non-string value wins
				if s.nums != nil {
					if c := s.b[start]; c == '-' || c >= '0' && c <= '9' {
						s.nums[key] = string(s.b[start:s.i])
					} else {
						delete(s.nums, key)
					}
				}
			}
		}
		if more, err := s.next('}'); !more || err != nil {
			return err
		}
	}
}

func (s *scanner) array(depth int) error {
	if empty, err := s.open(depth, ']'); empty || err != nil {
		return err
	}
	for {
		s.skipSpace()
		if err := s.value(depth + 1); err != nil {
			return err
		}
		if more, err := s.next(']'); !more || err != nil {
			return err
		}
	}
}

// open enters the object or array at s.i (its opening bracket), at nesting
// depth, and reports whether it is empty, in which case it also reads end,
// the closing bracket.
func (s *scanner) open(depth int, end byte) (empty bool, err error) {
	if depth >= maxDepth {
		return false, errTooDeep
	}
	s.i++ // { or [
	s.skipSpace()
	if s.i < len(s.b) && s.b[s.i] == end {
		s.i++
		return true, nil
	}
	return false, nil
}

// next reads what follows a member or element: a comma, and then more
// follows, or end, the closing bracket.
func (s *scanner) next(end byte) (more bool, err error) {
	s.skipSpace()
	if s.i >= len(s.b) {
		return false, errSyntax
	}
	switch s.b[s.i] {
	case ',':
		s.i++
		return true, nil
	case end:
		s.i++
		return false, nil
	}
	return false, errSyntax
}

func (s *scanner) value(depth int) error {
	if s.i >= len(s.b) {
		return errSyntax
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object(depth, nil)
	case c == '[':
		return s.array(depth)
	case c == '"':
		_, err := s.str(false)
		return err
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	default:
		for _, lit := range [...]string{"true", "false", "null"} {
			if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
				s.i += len(lit)
				return nil
			}
		}
		return errSyntax
	}
}

func (s *scanner) digits() int {
	n := 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

func (s *scanner) number() error {
	if s.b[s.i] == '-' {
		s.i++
	}
	if s.i >= len(s.b) {
		return errSyntax
	}
	if s.b[s.i] == '0' {
		s.i++
	} else if s.digits() == 0 {
		return errSyntax
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return errSyntax
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return errSyntax
		}
	}
	return nil
}

// str reads a string at s.i (which is '"'); it decodes it when decode is set.
func (s *scanner) str(decode bool) (string, error) {
	s.i++ // opening quote
	start := s.i
	var out []byte
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			if out == nil {
				v := string(s.b[start:s.i])
				s.i++
				return v, nil
			}
			s.i++
			return string(out), nil
		case c < 0x20:
			return "", errSyntax
		case c == '\\':
			if out == nil && decode {
				out = append(make([]byte, 0, s.i-start+8), s.b[start:s.i]...)
			}
			if s.i+1 >= len(s.b) {
				return "", errUnterminal
			}
			e := s.b[s.i+1]
			s.i += 2
			var r rune = -1
			switch e {
			case '"', '\\', '/':
				r = rune(e)
			case 'b':
				r = '\b'
			case 'f':
				r = '\f'
			case 'n':
				r = '\n'
			case 'r':
				r = '\r'
			case 't':
				r = '\t'
			case 'u':
				r1, ok := s.hex4()
				if !ok {
					return "", errBadEscape
				}
				r = r1
				if utf16.IsSurrogate(r1) {
					r = utf8.RuneError
					if s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
						save := s.i
						s.i += 2
						if r2, ok := s.hex4(); ok {
							if d := utf16.DecodeRune(r1, r2); d != utf8.RuneError {
								r = d
							} else {
								s.i = save
							}
						} else {
							return "", errBadEscape
						}
					}
				}
			default:
				return "", errBadEscape
			}
			if decode {
				out = utf8.AppendRune(out, r)
			}
		case c < utf8.RuneSelf:
			if out != nil {
				out = append(out, c)
			}
			s.i++
		default:
			r, size := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && size == 1 {
				return "", errBadUTF8
			}
			if out != nil {
				out = append(out, s.b[s.i:s.i+size]...)
			}
			s.i += size
		}
	}
	return "", errUnterminal
}

func (s *scanner) hex4() (rune, bool) {
	if s.i+4 > len(s.b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(s.b[s.i:s.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	s.i += 4
	return rune(v), true
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string literal. Invalid UTF-8 becomes
// U+FFFD; <, > and & are escaped so the result is safe inside HTML.
func AppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
