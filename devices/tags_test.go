package devices

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidateTag(t *testing.T) {
	for _, tc := range []struct {
		tag     string
		errPart string // "": valid
	}{
		{"kitchen", ""},
		{"floor-2", ""},
		{"a_b-9", ""},
		{strings.Repeat("x", 32), ""},
		{strings.Repeat("x", 33), "longer than 32"},
		{"", "empty"},
		{"Kitchen", `"Kitchen": character 'K'`},
		{"two words", `"two words": character ' '`},
		{"a/b", `character '/'`},
		{"é", `character`},
	} {
		err := ValidateTag(tc.tag)
		if ValidTag(tc.tag) != (err == nil) {
			t.Errorf("ValidTag(%q) = %v but ValidateTag = %v", tc.tag, ValidTag(tc.tag), err)
		}
		switch {
		case tc.errPart == "" && err != nil:
			t.Errorf("ValidateTag(%q) = %v, want nil", tc.tag, err)
		case tc.errPart != "" && (err == nil || !strings.Contains(err.Error(), tc.errPart) || !errors.Is(err, ErrInvalidTag)):
			t.Errorf("ValidateTag(%q) = %v, want ErrInvalidTag containing %q", tc.tag, err, tc.errPart)
		}
	}
}

func TestNormalizeTags(t *testing.T) {
	many := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, string(rune('a'+i)))
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		in      []string
		want    string // joined by ","
		errPart string
	}{
		{"none", nil, "", ""},
		{"sorted", []string{"zeta", "alpha", "mid"}, "alpha,mid,zeta", ""},
		{"duplicates dropped", []string{"b", "a", "b", "a", "a"}, "a,b", ""},
		{"16", many(16), strings.Join(many(16), ","), ""},
		{"17 with a duplicate is 16", append(many(16), "a"), strings.Join(many(16), ","), ""},
		{"17", many(17), "", "17 tags, at most 16"},
		{"bad tag named", []string{"ok", "Not-OK", "fine"}, "", `invalid tag "Not-OK"`},
		{"empty tag", []string{"ok", ""}, "", "invalid tag: empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NormalizeTags(tc.in)
			if tc.errPart != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errPart) || !errors.Is(err, ErrInvalidTag) {
					t.Errorf("NormalizeTags(%q) = %q, %v; want an error containing %q", tc.in, got, err, tc.errPart)
				}
				return
			}
			if err != nil || got == nil || strings.Join(got, ",") != tc.want {
				t.Errorf("NormalizeTags(%q) = %q, %v; want %q (non-nil)", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"", true},
		{"Kitchen light", true},
		{"Küche 🙂", true},
		{strings.Repeat("é", 64), true},
		{strings.Repeat("é", 65), false},
		{"tab\there", false},
		{"new\nline", false},
		{"c1 \u0085", false},
		{"bad\xffutf8", false},
	} {
		if err := ValidateName(tc.name); (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidateName(%q) = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

// metaOf returns the value of a meta event, decoded.
func metaOf(t *testing.T, ev Event) (name string, tags []string) {
	t.Helper()
	if ev.Label != LabelMeta {
		t.Fatalf("event %s is not meta", ev.AppendJSON(nil))
	}
	var v struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal(ev.Info, &v); err != nil || v.Tags == nil {
		t.Fatalf("meta value %s: %v (tags must be an array)", ev.Info, err)
	}
	return v.Name, v.Tags
}

func TestFleetMeta(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f, err := NewFleet([]Declared{
		{ID: "hall", Name: "Hall", Tags: []string{"floor-1", "lights", "floor-1"}},
		{ID: "plain"},
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	get := func(id string) Device {
		t.Helper()
		d, ok := f.Get(id)
		if !ok {
			t.Fatalf("%s not known", id)
		}
		return d
	}
	if d := get("hall"); strings.Join(d.Tags, ",") != "floor-1,lights" || d.Name() != "Hall" {
		t.Errorf("declared hall: tags %q name %q", d.Tags, d.Name())
	}
	if d := get("plain"); len(d.Tags) != 0 {
		t.Errorf("declared plain: tags %q, want none", d.Tags)
	}

	// Meta for a board not known yet (loaded at start) waits for it and
	// makes it no more known than before.
	evs, err := f.SetMeta(Meta{ID: "later", Name: "Garage", Tags: []string{"outside"}, HasTags: true}, nil)
	if err != nil || len(evs) != 0 || f.Known("later") || f.Len() != 2 {
		t.Fatalf("SetMeta(unknown) = %v, %v; known %v, len %d", evs, err, f.Known("later"), f.Len())
	}
	if _, err := f.Apply("later", KindStatus, []byte("online"), t0, nil); err != nil {
		t.Fatal(err)
	}
	if d := get("later"); d.Name() != "Garage" || strings.Join(d.Tags, ",") != "outside" {
		t.Errorf("later, once known: name %q tags %q", d.Name(), d.Tags)
	}

	// A known board: the meta event; run-time tags replace config's, a
	// run-time name wins over config's and info's.
	if _, err := f.Apply("hall", KindInfo, []byte(`{"id":"hall","name":"from info","firmware":"f","board":"b"}`), t0, nil); err != nil {
		t.Fatal(err)
	}
	evs, err = f.SetMeta(Meta{ID: "hall", Name: "Big hall", Tags: []string{"zz", "aa"}, HasTags: true}, nil)
	if err != nil || len(evs) != 1 {
		t.Fatalf("SetMeta(hall) = %v, %v; want one event", evs, err)
	}
	if name, tags := metaOf(t, evs[0]); name != "Big hall" || strings.Join(tags, ",") != "aa,zz" || evs[0].Device != "hall" {
		t.Errorf("meta event = %s", evs[0].AppendJSON(nil))
	}
	if m := f.Meta("hall"); m.Name != "Big hall" || !m.HasTags || strings.Join(m.Tags, ",") != "aa,zz" {
		t.Errorf("Meta(hall) = %+v", m)
	}
	// No name: config's again; no tags set: config's again.
	evs, _ = f.SetMeta(Meta{ID: "hall"}, nil)
	if name, tags := metaOf(t, evs[0]); name != "Hall" || strings.Join(tags, ",") != "floor-1,lights" {
		t.Errorf("meta back to config: %s", evs[0].AppendJSON(nil))
	}
	// Tags set to none: none, though config has some.
	evs, _ = f.SetMeta(Meta{ID: "hall", HasTags: true}, nil)
	if _, tags := metaOf(t, evs[0]); len(tags) != 0 || len(get("hall").Tags) != 0 {
		t.Errorf("tags set to none: %s", evs[0].AppendJSON(nil))
	}
	// No name anywhere but info: info's, then the id.
	evs, _ = f.SetMeta(Meta{ID: "later"}, nil)
	if name, _ := metaOf(t, evs[0]); name != "later" {
		t.Errorf("later without a name shows %q, want its id", name)
	}

	// Bad meta changes nothing.
	before := get("hall")
	for _, m := range []Meta{
		{ID: "hall", Tags: []string{"Bad"}, HasTags: true},
		{ID: "hall", Name: "x\x00"},
		{ID: "bad id", Name: "x"},
	} {
		if evs, err := f.SetMeta(m, nil); err == nil || len(evs) != 0 {
			t.Errorf("SetMeta(%+v) = %v, %v; want an error", m, evs, err)
		}
	}
	if after := get("hall"); after.Name() != before.Name() || strings.Join(after.Tags, ",") != strings.Join(before.Tags, ",") {
		t.Errorf("bad meta changed hall: %+v", after)
	}

	// Tagged: known boards with the tag, sorted; meta outlives Forget.
	f.SetMeta(Meta{ID: "plain", Tags: []string{"lights"}, HasTags: true}, nil)
	f.SetMeta(Meta{ID: "hall", Tags: []string{"lights", "floor-1"}, HasTags: true}, nil)
	if got := strings.Join(f.Tagged("lights"), ","); got != "hall,plain" {
		t.Errorf("Tagged(lights) = %s, want hall,plain", got)
	}
	if got := f.Tagged("nobody"); len(got) != 0 {
		t.Errorf("Tagged(nobody) = %q", got)
	}
	f.Forget("hall")
	if got := strings.Join(f.Tagged("lights"), ","); got != "plain" {
		t.Errorf("Tagged(lights) after forgetting hall = %s, want plain", got)
	}
	if _, err := f.Apply("hall", KindCount, []byte("1"), t0, nil); err != nil {
		t.Fatal(err)
	}
	if d := get("hall"); strings.Join(d.Tags, ",") != "floor-1,lights" || d.Name() != "Hall" {
		t.Errorf("hall back after Forget: name %q tags %q", d.Name(), d.Tags)
	}

	// The connect snapshot carries meta for boards with tags or a name
	// given; not for the others.
	snap := map[string]bool{}
	for _, ev := range f.AppendEvents(nil) {
		if ev.Label == LabelMeta {
			snap[ev.Device] = true
		}
	}
	if !snap["hall"] || !snap["plain"] || snap["later"] {
		t.Errorf("meta in the snapshot for %v, want hall and plain", snap)
	}
}

func TestNewFleetBadTags(t *testing.T) {
	_, err := NewFleet([]Declared{{ID: "a"}, {ID: "b", Tags: []string{"ok", "NO"}}}, 0)
	if err == nil || !strings.Contains(err.Error(), `devices[1]: invalid tag "NO"`) {
		t.Errorf("NewFleet with a bad tag = %v, want devices[1] naming it", err)
	}
}
