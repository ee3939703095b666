package wsgateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"switchyard/devices"
	"switchyard/history"
	"switchyard/wsgateway"
)

// memMeta is a MetaStore in memory.
type memMeta struct {
	mu    sync.Mutex
	saved map[string]devices.Meta
	fail  error // when set, SaveDeviceMeta answers it
}

func newMemMeta(ms ...devices.Meta) *memMeta {
	s := &memMeta{saved: map[string]devices.Meta{}}
	for _, m := range ms {
		s.saved[m.ID] = m
	}
	return s
}

func (s *memMeta) DeviceMeta(context.Context) ([]devices.Meta, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []devices.Meta
	for _, m := range s.saved {
		out = append(out, m)
	}
	return out, nil
}

func (s *memMeta) SaveDeviceMeta(_ context.Context, m devices.Meta) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.saved[m.ID] = m
	return nil
}

func (s *memMeta) get(id string) (devices.Meta, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.saved[id]
	return m, ok
}

func (s *memMeta) setFail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

// auditLog is an Auditor that keeps the entries.
type auditLog struct {
	mu      sync.Mutex
	entries []history.Entry
}

func (a *auditLog) Audit(e history.Entry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entries = append(a.entries, e)
}

// take returns the entries since the last take, as
// "actor action target result" strings.
func (a *auditLog) take() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, e := range a.entries {
		out = append(out, fmt.Sprintf("%s %s %s %s", e.Actor, e.Action, e.Target, e.Result))
		if e.At.IsZero() || e.Remote == "" {
			out = append(out, "(no time or remote)")
		}
	}
	a.entries = nil
	return out
}

// metaValue is the value of a meta event.
type metaValue struct {
	Name string   `json:"name"`
	Tags []string `json:"tags"`
}

// waitMeta reads events until the meta event of device and returns its
// value.
func (b *browser) waitMeta(device string) metaValue {
	b.t.Helper()
	e := b.waitFor(device, "meta", "")
	var v metaValue
	if err := json.Unmarshal(e.Value, &v); err != nil || v.Tags == nil {
		b.t.Fatalf("meta event %s: %v (tags must be an array)", e.Value, err)
	}
	return v
}

func TestPatchDevice(t *testing.T) {
	store, audit := newMemMeta(), &auditLog{}
	h := newAuthHarness(t, wsgateway.Config{
		Declared: []devices.Declared{{ID: "hall", Name: "Hall", Tags: []string{"lights"}}},
		Meta:     store,
		Audit:    audit,
	})
	otto, vera := basic("otto", "pwo"), basic("vera", "pwv")
	h.board("b1").online("OFF")
	h.waitDeviceWith("b1", otto)

	// The device objects: tags always an array, firmware info's or null.
	var list []apiDevice
	if code := h.doWith("GET", "/api/devices", "", vera, &list); code != 200 || len(list) != 2 {
		t.Fatalf("GET /api/devices = %d %+v", code, list)
	}
	if b1 := list[0]; b1.Tags == nil || len(b1.Tags) != 0 || b1.Firmware == nil || *b1.Firmware != "test" {
		t.Errorf("b1 = tags %#v firmware %v, want [] and \"test\"", b1.Tags, b1.Firmware)
	}
	if hall := list[1]; strings.Join(hall.Tags, ",") != "lights" || hall.Firmware != nil || hall.Name != "Hall" {
		t.Errorf("declared hall = %+v, want tags [lights], firmware null", hall)
	}

	br := h.browser("/ws", otto)
	br.waitFor("b1", "ledStatus", "")

	// Name and tags: 200 with the device, a meta event to every browser,
	// saved, audited as the operator.
	var d apiDevice
	code := h.doWith("PATCH", "/api/devices/b1", `{"name":"Bench one","tags":["floor-2","bench","bench"]}`, otto, &d)
	if code != 200 || d.ID != "b1" || d.Name != "Bench one" || strings.Join(d.Tags, ",") != "bench,floor-2" || !d.Online {
		t.Errorf("PATCH name and tags = %d %+v", code, d)
	}
	if v := br.waitMeta("b1"); v.Name != "Bench one" || strings.Join(v.Tags, ",") != "bench,floor-2" {
		t.Errorf("meta event = %+v", v)
	}
	if m, _ := store.get("b1"); m.Name != "Bench one" || !m.HasTags || strings.Join(m.Tags, ",") != "bench,floor-2" {
		t.Errorf("saved %+v", m)
	}
	if got, want := audit.take(), []string{"otto rename b1 ok", "otto retag b1 ok"}; !slices.Equal(got, want) {
		t.Errorf("audit %q, want %q", got, want)
	}

	// "name":"" goes back to the config's or info's name (here the id);
	// tags stay. Only the rename is audited.
	if code := h.doWith("PATCH", "/api/devices/b1", `{"name":""}`, otto, &d); code != 200 || d.Name != "b1" || strings.Join(d.Tags, ",") != "bench,floor-2" {
		t.Errorf("PATCH name \"\" = %d %+v", code, d)
	}
	if v := br.waitMeta("b1"); v.Name != "b1" {
		t.Errorf("meta event after the name's reset = %+v", v)
	}
	if got, want := audit.take(), []string{"otto rename b1 ok"}; !slices.Equal(got, want) {
		t.Errorf("audit %q, want %q", got, want)
	}
	// Tags set to none on a declared board: none, though config has one.
	if code := h.doWith("PATCH", "/api/devices/hall", `{"tags":[]}`, otto, &d); code != 200 || d.Tags == nil || len(d.Tags) != 0 || d.Name != "Hall" {
		t.Errorf("PATCH hall tags [] = %d %+v", code, d)
	}
	br.waitMeta("hall")
	audit.take()

	for _, tc := range []struct {
		name, path, body string
		hdr              http.Header
		want             int
		says             string
	}{
		{"bad tag", "/api/devices/b1", `{"tags":["ok","Kitchen"]}`, otto, 400, `invalid tag "Kitchen"`},
		{"17 tags", "/api/devices/b1", `{"tags":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"]}`, otto, 400, "at most 16"},
		{"long name", "/api/devices/b1", `{"name":"` + strings.Repeat("n", 65) + `"}`, otto, 400, "at most 64"},
		{"tags not a list", "/api/devices/b1", `{"tags":"kitchen"}`, otto, 400, "bad body"},
		{"unknown field", "/api/devices/b1", `{"nmae":"x"}`, otto, 400, "nmae"},
		{"nothing", "/api/devices/b1", `{}`, otto, 400, "nothing to change"},
		{"garbage", "/api/devices/b1", `garbage`, otto, 400, "bad body"},
		{"trailing data", "/api/devices/b1", `{"name":"x"} y`, otto, 400, "data after"},
		{"unknown device", "/api/devices/ghost", `{"name":"x"}`, otto, 404, "ghost"},
		{"invalid id", "/api/devices/bad%20id", `{"name":"x"}`, otto, 404, "bad id"},
		{"viewer", "/api/devices/b1", `{"name":"x"}`, vera, 403, "may watch but not command"},
		{"nobody", "/api/devices/b1", `{"name":"x"}`, nil, 401, ""},
	} {
		var body struct{ Error string }
		if code := h.doWith("PATCH", tc.path, tc.body, tc.hdr, &body); code != tc.want || !strings.Contains(body.Error, tc.says) {
			t.Errorf("%s: %d %q, want %d saying %q", tc.name, code, body.Error, tc.want, tc.says)
		}
	}
	if got := audit.take(); len(got) != 0 {
		t.Errorf("refused PATCHes audited: %q", got)
	}

	// A save that fails changes nothing, answers 500, and is audited as
	// failed.
	store.setFail(errors.New("disk full"))
	var body struct{ Error string }
	if code := h.doWith("PATCH", "/api/devices/b1", `{"tags":["x"]}`, otto, &body); code != 500 || !strings.Contains(body.Error, "disk full") {
		t.Errorf("PATCH with the store failing = %d %q, want 500 naming the cause", code, body.Error)
	}
	if got, want := audit.take(), []string{"otto retag b1 failed"}; !slices.Equal(got, want) {
		t.Errorf("audit %q, want %q", got, want)
	}
	if d := h.getDevice("b1", otto); strings.Join(d.Tags, ",") != "bench,floor-2" {
		t.Errorf("tags after a failed save: %q, want them unchanged", d.Tags)
	}

	// A browser that connects now gets the meta in its snapshot.
	late := h.browser("/ws", otto)
	if v := late.waitMeta("b1"); v.Name != "b1" || strings.Join(v.Tags, ",") != "bench,floor-2" {
		t.Errorf("snapshot meta = %+v", v)
	}
}

// getDevice gets device id with the credentials of hdr.
func (h *harness) getDevice(id string, hdr http.Header) apiDevice {
	h.t.Helper()
	var d apiDevice
	if code := h.doWith("GET", "/api/devices/"+id, "", hdr, &d); code != 200 {
		h.t.Fatalf("GET /api/devices/%s = %d", id, code)
	}
	return d
}

// Names and tags saved before win over the declared ones at New, also for
// boards not known yet.
func TestPatchedMetaLoadedAtNew(t *testing.T) {
	store := newMemMeta(
		devices.Meta{ID: "hall", Name: "Big hall"}, // tags never set: config's
		devices.Meta{ID: "attic", Tags: []string{}, HasTags: true},
		devices.Meta{ID: "later", Name: "Later", Tags: []string{"outside"}, HasTags: true},
	)
	h := newHarness(t, wsgateway.Config{
		Declared: []devices.Declared{
			{ID: "hall", Name: "Hall", Tags: []string{"lights"}},
			{ID: "attic", Name: "Attic", Tags: []string{"lights"}},
		},
		Meta: store,
	})
	var list []apiDevice
	h.do("GET", "/api/devices", "", &list)
	var got []string
	for _, d := range list {
		got = append(got, fmt.Sprintf("%s=%s%v", d.ID, d.Name, d.Tags))
	}
	if want := "attic=Attic[] hall=Big hall[lights]"; strings.Join(got, " ") != want {
		t.Errorf("devices %q, want %q", got, want)
	}
	h.board("later").online("OFF")
	if d := h.waitDevice("later", func(d apiDevice) bool { return d.Online }); d.Name != "Later" || strings.Join(d.Tags, ",") != "outside" {
		t.Errorf("later, once known = %+v", d)
	}
	if got := strings.Join(h.gw.Tagged("lights"), ","); got != "hall" {
		t.Errorf("Tagged(lights) = %s, want hall", got)
	}
}

func TestTagCommands(t *testing.T) {
	h := newHarness(t, wsgateway.Config{Declared: []devices.Declared{
		{ID: "t1", Tags: []string{"kitchen"}},
		{ID: "sleepy", Tags: []string{"kitchen"}},
	}})
	for _, id := range []string{"t1", "t2", "t3"} {
		h.onlineBoard(id, "OFF")
	}
	// t2 gets the tag at run time, t3 another one, sleepy both.
	for id, tags := range map[string]string{"t2": `["kitchen","hall"]`, "t3": `["hall"]`, "sleepy": `["kitchen","hall"]`} {
		if code := h.do("PATCH", "/api/devices/"+id, `{"tags":`+tags+`}`, nil); code != 200 {
			t.Fatalf("PATCH %s = %d", id, code)
		}
	}
	cmds := h.subscribe("devices/+/led/set")
	// collect returns the led/set messages before the marker it sends to
	// t3, once the tag command has published all of its own: so every
	// message the tag command caused is seen, and nothing it did not.
	collect := func(marker string) string {
		t.Helper()
		if code := h.do("POST", "/api/devices/t3/led", `{"action":"`+marker+`"}`, nil); code != 202 {
			t.Fatalf("marker = %d", code)
		}
		var got []string
		for {
			m := recvMQTT(t, cmds, "a tag's led/set")
			if m.Topic() == "devices/t3/led/set" && strings.EqualFold(string(m.Payload()), marker) {
				break
			}
			got = append(got, m.Topic()+"="+string(m.Payload()))
		}
		sort.Strings(got)
		return strings.Join(got, " ")
	}

	var res struct {
		Tag      string
		Group    *string
		Commands []struct{ Device, Command string }
		Skipped  map[string]string
	}
	if code := h.do("POST", "/api/tags/kitchen/led", `{"action":"on"}`, &res); code != 202 {
		t.Fatalf("POST /api/tags/kitchen/led = %d", code)
	}
	if got, want := collect("toggle"), "devices/t1/led/set=ON devices/t2/led/set=ON"; got != want {
		t.Errorf("tag kitchen on: %s, want %s", got, want)
	}
	if res.Tag != "kitchen" || res.Group != nil || len(res.Commands) != 2 || len(res.Skipped) != 1 || !strings.Contains(res.Skipped["sleepy"], "offline") {
		t.Errorf("answer = %+v, want tag kitchen, 2 commands, sleepy skipped offline", res)
	}

	br := h.browser("/ws", nil)
	br.waitFor("t1", "ledStatus", "")
	// On /ws, the error naming the offline board comes once the others'
	// commands are published.
	br.send(`{"tag":"kitchen","action":"off"}`)
	if e := br.waitFor("", "error", ""); !strings.Contains(string(e.Value), "tag kitchen: 1 of 3") || !strings.Contains(string(e.Value), "sleepy") {
		t.Errorf("the offline board was not reported: %s", e.Value)
	}
	if got, want := collect("toggle"), "devices/t1/led/set=OFF devices/t2/led/set=OFF"; got != want {
		t.Errorf("/ws tag kitchen off: %s, want %s", got, want)
	}
	br.send(`{"tag":"hall","action":"toggle"}`)
	if e := br.waitFor("", "error", ""); !strings.Contains(string(e.Value), "tag hall: 1 of 3") {
		t.Errorf("tag hall: error %s, want sleepy reported", e.Value)
	}
	if got, want := collect("on"), "devices/t2/led/set=TOGGLE devices/t3/led/set=TOGGLE"; got != want {
		t.Errorf("/ws tag hall toggle: %s, want %s", got, want)
	}
	for _, tc := range []struct{ msg, says string }{
		{`{"tag":"nobody","action":"on"}`, `no board has tag \"nobody\"`},
		{`{"tag":"Bad","action":"on"}`, `invalid tag \"Bad\"`},
	} {
		br.send(tc.msg)
		if e := br.waitFor("", "error", ""); !strings.Contains(string(e.Value), tc.says) {
			t.Errorf("%s: error %s, want it to contain %s", tc.msg, e.Value, tc.says)
		}
	}

	for _, tc := range []struct {
		path, body string
		want       int
	}{
		{"/api/tags/nobody/led", `{"action":"on"}`, 404},
		{"/api/tags/Bad/led", `{"action":"on"}`, 404},
		{"/api/tags/kitchen/led", `garbage`, 400},
		{"/api/tags/kitchen/led", `{"action":"explode"}`, 400},
	} {
		if code := h.do("POST", tc.path, tc.body, nil); code != tc.want {
			t.Errorf("POST %s %s = %d, want %d", tc.path, tc.body, code, tc.want)
		}
	}
	if got := collect("off"); got != "" {
		t.Errorf("refused tag commands published %s", got)
	}
}
