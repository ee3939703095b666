package wsgateway_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"switchyard/devices"
	"switchyard/wsgateway"
)

func TestDeclare(t *testing.T) {
	meta := newMemMeta()
	h := newHarness(t, wsgateway.Config{Meta: meta, MaxDevices: 3})
	h.onlineBoard("b1", "ON")
	br := h.browser("/ws", nil)
	br.waitFor("b1", "ledStatus", "")

	// A board an admin created: known at once, offline, never seen, with
	// its name and tags (saved like a PATCH's), in every browser.
	if err := h.gw.Declare("kitchen", "Kitchen", []string{"z", "a", "z"}); err != nil {
		t.Fatal(err)
	}
	br.waitFor("kitchen", "online", "false")
	if v := br.waitMeta("kitchen"); v.Name != "Kitchen" || strings.Join(v.Tags, ",") != "a,z" {
		t.Errorf("meta event %+v, want Kitchen [a z]", v)
	}
	var d apiDevice
	if code := h.do("GET", "/api/devices/kitchen", "", &d); code != http.StatusOK ||
		d.Online || d.LastSeen != nil || d.Name != "Kitchen" || strings.Join(d.Tags, ",") != "a,z" || d.New {
		t.Errorf("GET kitchen = %d %+v; want offline, never seen, Kitchen [a z], not new", code, d)
	}
	if m, ok := meta.get("kitchen"); !ok || m.Name != "Kitchen" || !m.HasTags || strings.Join(m.Tags, ",") != "a,z" {
		t.Errorf("saved meta = %+v, %v", m, ok)
	}

	// Declared again with nothing to set (as at a restart): what was given
	// stays; a known online board stays online.
	for _, id := range []string{"kitchen", "b1"} {
		if err := h.gw.Declare(id, "", nil); err != nil {
			t.Fatal(err)
		}
	}
	if code := h.do("GET", "/api/devices/kitchen", "", &d); code != http.StatusOK || d.Name != "Kitchen" || len(d.Tags) != 2 {
		t.Errorf("kitchen declared again = %d %+v", code, d)
	}
	if code := h.do("GET", "/api/devices/b1", "", &d); code != http.StatusOK || !d.Online {
		t.Errorf("b1 declared again = %d %+v, want online", code, d)
	}
	if !h.gw.Online("b1") || h.gw.Online("kitchen") || h.gw.Online("nobody") {
		t.Errorf("Online: b1 %v, kitchen %v, nobody %v; want true, false, false",
			h.gw.Online("b1"), h.gw.Online("kitchen"), h.gw.Online("nobody"))
	}

	// Refused: bad id, name or tag, a full fleet; none changes anything.
	for _, c := range []struct {
		id, name string
		tags     []string
		want     error
	}{
		{"bad id", "", nil, nil},
		{"ok-1", strings.Repeat("n", 200), nil, nil},
		{"ok-2", "", []string{"Not A Tag"}, nil},
		{"third", "", nil, nil}, // fills the fleet (3)
		{"fourth", "", nil, devices.ErrFleetFull},
	} {
		err := h.gw.Declare(c.id, c.name, c.tags)
		if c.id == "third" {
			if err != nil {
				t.Fatalf("Declare(third): %v", err)
			}
			continue
		}
		if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("Declare(%q, %q, %q) = %v, want an error (%v)", c.id, c.name, c.tags, err, c.want)
		}
	}
	var list []apiDevice
	if h.do("GET", "/api/devices", "", &list); len(list) != 3 {
		t.Errorf("devices after the refused ones: %+v, want b1, kitchen, third", list)
	}
	if _, ok := meta.get("ok-1"); ok {
		t.Error("a refused name was saved")
	}
}

func TestNewBoards(t *testing.T) {
	var mu sync.Mutex
	adopted := map[string]bool{"known": true}
	h := newHarness(t, wsgateway.Config{
		Declared: []devices.Declared{{ID: "hall"}},
		Adopted: func(id string) bool {
			mu.Lock()
			defer mu.Unlock()
			return adopted[id]
		},
	})
	h.onlineBoard("known", "ON")
	h.onlineBoard("stray", "ON")
	news := func() []string {
		t.Helper()
		var list []apiDevice
		if code := h.do("GET", "/api/devices", "", &list); code != http.StatusOK {
			t.Fatalf("GET /api/devices = %d", code)
		}
		var out []string
		for _, d := range list {
			if d.New {
				out = append(out, d.ID)
			}
		}
		return out
	}
	if got := news(); !slices.Equal(got, []string{"stray"}) {
		t.Errorf("new boards = %q, want [stray] (hall is declared, known adopted)", got)
	}
	mu.Lock()
	adopted["stray"] = true
	mu.Unlock()
	if got := news(); len(got) != 0 {
		t.Errorf("new boards once stray is adopted = %q, want none", got)
	}

	// Without Adopted no board is new.
	h2 := newHarness(t, wsgateway.Config{})
	h2.onlineBoard("stray", "ON")
	var d apiDevice
	if code := h2.do("GET", "/api/devices/stray", "", &d); code != http.StatusOK || d.New {
		t.Errorf("without Adopted: %d %+v, want not new", code, d)
	}
}

func TestForgetting(t *testing.T) {
	var mu sync.Mutex
	var called []string
	audit := &auditLog{}
	h := newHarness(t, wsgateway.Config{
		Audit: audit,
		Forgetting: func(ctx context.Context, id string) error {
			mu.Lock()
			defer mu.Unlock()
			called = append(called, id)
			if id == "keep" {
				return errors.New("the database is away")
			}
			return ctx.Err()
		},
	})
	h.onlineBoard("keep", "ON")
	h.onlineBoard("gone", "ON")
	calls := func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := called
		called = nil
		return out
	}

	if code := h.do("DELETE", "/api/devices/keep", "", nil); code != http.StatusInternalServerError {
		t.Errorf("DELETE keep (the hook fails) = %d, want 500", code)
	}
	if code := h.do("GET", "/api/devices/keep", "", nil); code != http.StatusOK {
		t.Errorf("keep after a failed forget: GET = %d, want it still known", code)
	}
	if code := h.do("DELETE", "/api/devices/gone", "", nil); code != http.StatusNoContent {
		t.Errorf("DELETE gone = %d, want 204", code)
	}
	if code := h.do("DELETE", "/api/devices/never", "", nil); code != http.StatusNotFound {
		t.Errorf("DELETE never = %d, want 404", code)
	}
	if got := calls(); !slices.Equal(got, []string{"keep", "gone"}) {
		t.Errorf("Forgetting called for %q, want [keep gone] (never for an unknown board)", got)
	}
	if got := audit.take(); !slices.Equal(got, []string{"anonymous forget keep failed", "anonymous forget gone ok"}) {
		t.Errorf("audit = %q", got)
	}
}
