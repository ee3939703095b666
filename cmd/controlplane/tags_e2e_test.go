package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"switchyard/internal/fakeboard"
	"switchyard/internal/testutil"
)

// TestTagsEndToEnd runs the real binary with tags in config.yaml: PATCH
// renames and retags boards, a tag command and a tag rollout reach exactly
// the tagged boards, and what PATCH set survives a restart (in the SQLite
// file beside storage.path), winning over config.yaml.
func TestTagsEndToEnd(t *testing.T) {
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("pw-ada"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	// Fixed ports: the boards reconnect to the same broker after the
	// restart.
	cfg := filepath.Join(dir, "config.yaml")
	text := fmt.Sprintf(`
mqtt: {listen: '127.0.0.1:%s'}
http: {listen: '127.0.0.1:%s'}
storage: {path: %q}
log: {level: debug}
auth:
  users:
    - {name: ada, password_hash: %q, role: admin}
devices:
  - {id: hall, name: Hall, tags: [lights, floor-1]}
  - {id: attic, tags: [lights]}
`, testutil.FreePort(t), testutil.FreePort(t), filepath.Join(dir, "data", "retained.log"), hash)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	p := start(t, cfg)

	type tagged struct {
		ID       string
		Name     string
		Online   bool
		Tags     []string
		Firmware *string
		Info     struct{ Platform string }
	}
	devicesNow := func(p *proc) string {
		t.Helper()
		code, _, body := p.as("ada", "GET", "/api/devices", nil)
		var list []tagged
		if code != http.StatusOK || json.Unmarshal(body, &list) != nil {
			t.Fatalf("GET /api/devices: %d %s", code, body)
		}
		var out []string
		for _, d := range list {
			if d.Tags == nil {
				t.Errorf("%s: tags %s, want an array", d.ID, body)
			}
			out = append(out, fmt.Sprintf("%s=%s%v", d.ID, d.Name, d.Tags))
		}
		return strings.Join(out, " ")
	}
	if got, want := devicesNow(p), "attic=attic[lights] hall=Hall[floor-1 lights]"; got != want {
		t.Errorf("from config.yaml: %s, want %s", got, want)
	}

	code, _, body := p.as("ada", "GET", "/api/update-key", nil)
	var key struct {
		PublicKey string `json:"public_key"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &key) != nil {
		t.Fatalf("GET /api/update-key: %d %s", code, body)
	}
	pub, _ := base64.StdEncoding.DecodeString(key.PublicKey)
	ids := []string{"attic", "b3", "hall"}
	boards := map[string]*fakeboard.Board{}
	for _, id := range ids {
		boards[id] = fakeboard.Start(t, fakeboard.Config{
			Broker: "tcp://127.0.0.1:" + p.mqttPort, ID: id, Version: "1.0", Key: ed25519.PublicKey(pub),
		})
	}
	online := func(p *proc, id string) {
		t.Helper()
		testutil.WaitFor(t, wait, func() error { // no event says the API has it: poll
			_, _, body := p.as("ada", "GET", "/api/devices/"+id, nil)
			var d tagged
			if json.Unmarshal(body, &d) != nil || !d.Online || d.Info.Platform != "sim" || d.Firmware == nil {
				return fmt.Errorf("%s not online with its info: %s", id, body)
			}
			return nil
		})
	}
	for _, id := range ids {
		online(p, id)
	}

	for _, tc := range []struct{ id, body string }{
		{"b3", `{"name":"Bench","tags":["lights","bench"]}`},
		{"attic", `{"tags":["attic"]}`},
		{"hall", `{"name":"Big hall"}`},
	} {
		if code, _, body := p.as("ada", "PATCH", "/api/devices/"+tc.id, []byte(tc.body)); code != http.StatusOK {
			t.Fatalf("PATCH %s %s: %d %s", tc.id, tc.body, code, body)
		}
	}
	patched := "attic=attic[attic] b3=Bench[bench lights] hall=Big hall[floor-1 lights]"
	if got := devicesNow(p); got != patched {
		t.Errorf("after PATCH: %s, want %s", got, patched)
	}

	// A tag command: every led/set before the marker sent to attic (not
	// tagged lights any more) once the command has answered.
	sets := p.sub(t, "devices/+/led/set")
	if code, _, body := p.as("ada", "POST", "/api/tags/lights/led", []byte(`{"action":"on"}`)); code != http.StatusAccepted {
		t.Fatalf("POST /api/tags/lights/led: %d %s", code, body)
	}
	if code, _, body := p.as("ada", "POST", "/api/devices/attic/led", []byte(`{"action":"off"}`)); code != http.StatusAccepted {
		t.Fatalf("marker: %d %s", code, body)
	}
	var got []string
	deadline := time.After(wait)
	for marker := false; !marker; {
		select {
		case l := <-sets:
			switch {
			case l == "devices/attic/led/set OFF":
				marker = true
			case !strings.Contains(l, "test-ready-"): // not sub's own markers
				got = append(got, l)
			}
		case <-deadline:
			t.Fatalf("no marker on led/set (saw %q)", got)
		}
	}
	slices.Sort(got)
	if want := []string{"devices/b3/led/set ON", "devices/hall/led/set ON"}; !slices.Equal(got, want) {
		t.Errorf("tag lights on: %q, want %q", got, want)
	}

	// A rollout by tag: exactly the tagged boards.
	build := make([]byte, 10_000)
	rand.Read(build)
	code, _, body = p.as("ada", "POST", "/api/firmware?version=2.0&platform=sim", build)
	var fw struct{ SHA256 string }
	if code != http.StatusCreated || json.Unmarshal(body, &fw) != nil {
		t.Fatalf("upload: %d %s", code, body)
	}
	ws := p.watch(t)
	code, _, body = p.as("ada", "POST", "/api/rollouts", []byte(`{"firmware":"`+fw.SHA256+`","target":{"tag":"lights"},"health_window":"1s"}`))
	var r rolloutEvent
	if code != http.StatusCreated || json.Unmarshal(body, &r) != nil {
		t.Fatalf("POST /api/rollouts by tag: %d %s", code, body)
	}
	done := waitRollout(t, ws, r.ID, func(ev rolloutEvent) bool { return ev.State == "done" })
	var in []string
	for _, w := range done.Waves {
		for _, b := range w.Boards {
			in = append(in, b.ID+"="+b.State)
		}
	}
	slices.Sort(in)
	if want := []string{"b3=updated", "hall=updated"}; !slices.Equal(in, want) {
		t.Errorf("tag rollout boards %q, want %q", in, want)
	}
	if n := len(boards["attic"].Jobs()); n != 0 {
		t.Errorf("attic, not tagged lights, was sent %d jobs", n)
	}

	// A restart: what PATCH set is read back from the database and still
	// wins over config.yaml; tags set there still target boards.
	p.stop()
	p = start(t, cfg)
	if got := devicesNow(p); got != patched {
		t.Errorf("after a restart: %s, want %s", got, patched)
	}
	online(p, "b3")
	code, _, body = p.as("ada", "POST", "/api/tags/bench/led", []byte(`{"action":"toggle"}`))
	var res struct {
		Tag      string
		Commands []struct{ Device string }
	}
	if code != http.StatusAccepted || json.Unmarshal(body, &res) != nil || len(res.Commands) != 1 || res.Commands[0].Device != "b3" {
		t.Errorf("POST /api/tags/bench/led after the restart: %d %s, want 202 commanding b3", code, body)
	}
	p.stop()
}
