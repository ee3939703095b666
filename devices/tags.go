// Tags and names people give boards: tags ("kitchen", "floor-2") find and
// command boards together; a name given at run time wins over config's.

package devices

import (
	"errors"
	"fmt"
	"sort"
	"unicode/utf8"
)

// The bounds of the contract: a tag is 1 to MaxTagLen of a-z 0-9 _ -, and a
// board has at most MaxTags of them. A name given at run time is at most
// MaxNameLen characters.
const (
	MaxTagLen  = 32
	MaxTags    = 16
	MaxNameLen = 64
)

// ErrInvalidTag is wrapped by every tag validation error; ErrInvalidName by
// every name validation error.
var (
	ErrInvalidTag  = errors.New("invalid tag")
	ErrInvalidName = errors.New("invalid name")
)

// ValidateTag reports whether t is a valid tag: 1 to 32 characters of
// a-z, 0-9, '_' and '-'. The error names the tag.
func ValidateTag(t string) error {
	switch {
	case t == "":
		return fmt.Errorf("%w: empty", ErrInvalidTag)
	case len(t) > MaxTagLen:
		return fmt.Errorf("%w %.20q...: longer than %d characters", ErrInvalidTag, t, MaxTagLen)
	}
	for i := 0; i < len(t); i++ {
		if !tagChar(t[i]) {
			return fmt.Errorf("%w %q: character %q not allowed (use a-z 0-9 _ -)", ErrInvalidTag, t, t[i])
		}
	}
	return nil
}

// ValidTag is ValidateTag as a boolean.
func ValidTag(t string) bool { return ValidateTag(t) == nil }

func tagChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// NormalizeTags checks a board's tags and returns them sorted, each once.
// A tag listed twice counts once: duplicates are dropped, not refused (a
// list written by hand or merged by a script may repeat one); what is left
// may be at most MaxTags. The error names the first bad tag. No tags give
// an empty, non-nil slice.
func NormalizeTags(tags []string) ([]string, error) {
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		if err := ValidateTag(t); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	sort.Strings(out)
	j := 0
	for i, t := range out {
		if i == 0 || t != out[j-1] {
			out[j] = t
			j++
		}
	}
	out = out[:j]
	if len(out) > MaxTags {
		return nil, fmt.Errorf("%w: %d tags, at most %d a board", ErrInvalidTag, len(out), MaxTags)
	}
	return out, nil
}

// ValidateName reports whether name may be given to a board at run time:
// valid UTF-8, at most MaxNameLen characters, no control characters. The
// empty name is valid: it means none.
func ValidateName(name string) error {
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidName)
	}
	if n := utf8.RuneCountInString(name); n > MaxNameLen {
		return fmt.Errorf("%w %.20q...: %d characters, at most %d", ErrInvalidName, name, n, MaxNameLen)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 {
			return fmt.Errorf("%w %q: control character %U not allowed", ErrInvalidName, name, r)
		}
	}
	return nil
}

// Meta is what people set on a board at run time (PATCH
// /api/devices/<id>), kept by the control plane across restarts: a name
// and tags that win over the config file's.
type Meta struct {
	ID      string
	Name    string   // "": none (the config's, the info's or the id shows)
	Tags    []string // sorted, each once; they apply when HasTags is set
	HasTags bool     // tags were set, maybe to none; else the config's apply
}

// given is what config and people gave one board; it outlives Forget.
// Its slices are never modified, only replaced, so devices share them.
type given struct {
	configName string
	configTags []string
	meta       Meta // set at run time (meta.ID "" when never)
}

// tags returns the board's tags: people's when set, else config's.
func (g *given) tags() []string {
	if g.meta.HasTags {
		return g.meta.Tags
	}
	return g.configTags
}

// apply sets what g holds on d.
func (g *given) apply(d *Device) {
	d.ConfigName, d.Renamed, d.Tags = g.configName, g.meta.Name, g.tags()
}

// SetMeta sets the name and tags people gave board m.ID at run time; they
// win over the config file's. The board need not be known: meta loaded at
// start waits for the board, and like config names it outlives Forget.
// When the board is known, the meta event browsers get is appended to
// evs. A bad id, name or tag is an error, and changes nothing.
func (f *Fleet) SetMeta(m Meta, evs []Event) ([]Event, error) {
	if err := ValidateID(m.ID); err != nil {
		return evs, err
	}
	if err := ValidateName(m.Name); err != nil {
		return evs, err
	}
	if m.HasTags {
		tags, err := NormalizeTags(m.Tags)
		if err != nil {
			return evs, err
		}
		m.Tags = tags
	} else {
		m.Tags = nil
	}
	g := f.given[m.ID]
	if g == nil {
		g = &given{}
		f.given[m.ID] = g
	}
	g.meta = m
	if d, ok := f.devices[m.ID]; ok {
		g.apply(d)
		evs = append(evs, d.MetaEvent())
	}
	return evs, nil
}

// Meta returns what people set on board id at run time (Meta.ID is id
// even when they set nothing).
func (f *Fleet) Meta(id string) Meta {
	if g := f.given[id]; g != nil && g.meta.ID != "" {
		return g.meta
	}
	return Meta{ID: id}
}

// Tagged returns the ids of the known boards with tag t, sorted.
func (f *Fleet) Tagged(t string) []string {
	var ids []string
	for _, id := range f.ids {
		if f.devices[id].HasTag(t) {
			ids = append(ids, id)
		}
	}
	return ids
}

// MetaEvent returns the meta event of d: its name (as Name returns it)
// and its tags, {"name":"…","tags":[…]}.
func (d *Device) MetaEvent() Event {
	b := append([]byte(nil), `{"name":`...)
	b = AppendJSONString(b, d.Name())
	b = append(b, `,"tags":[`...)
	for i, t := range d.Tags {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendJSONString(b, t)
	}
	b = append(b, "]}"...)
	return Event{Device: d.ID, Label: LabelMeta, Info: b}
}

// HasTag reports whether d has tag t.
func (d *Device) HasTag(t string) bool {
	i := sort.SearchStrings(d.Tags, t)
	return i < len(d.Tags) && d.Tags[i] == t
}
