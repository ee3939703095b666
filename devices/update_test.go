package devices

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseUpdateReport(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    UpdateReport
		wantErr string
	}{
		{in: `{"job":"r1/1","state":"downloading","version":"1.2","running":"1.1","progress":40}`,
			want: UpdateReport{Job: "r1/1", State: UpdateDownloading, Version: "1.2", Running: "1.1", Progress: 40}},
		{in: ` {"job":"r1/1","state":"rolled_back","version":"1.2","running":"1.1","progress":0,"error":"crashed: exit status 2"} `,
			want: UpdateReport{Job: "r1/1", State: UpdateRolledBack, Version: "1.2", Running: "1.1", Error: "crashed: exit status 2"}},
		{in: `{"job":"r1/1","state":"exploded"}`, wantErr: `unknown state "exploded"`},
		{in: `{"job":"r1/1","state":"downloading","progress":101}`, wantErr: "progress 101 outside 0-100"},
		{in: `[1]`, wantErr: "not a JSON object"},
		{in: `{"job":`, wantErr: "unexpected end"},
		{in: `{"job":"a","state":"trial","x":"` + strings.Repeat("x", MaxUpdateSize) + `"}`, wantErr: "larger than"},
	} {
		got, err := ParseUpdateReport([]byte(tc.in))
		if tc.wantErr != "" {
			if err == nil || !errors.Is(err, ErrBadPayload) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseUpdateReport(%.40q) error = %v, want one with %q wrapping ErrBadPayload", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseUpdateReport(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		back, err := ParseUpdateReport(got.AppendJSON(nil))
		if err != nil || back != got {
			t.Errorf("round trip of %+v = %+v, %v", got, back, err)
		}
	}
}

func TestParseUpdateCommand(t *testing.T) {
	sig := base64.StdEncoding.EncodeToString(make([]byte, 64))
	sha := strings.Repeat("ab", 32)
	ok := func(mut func(*UpdateCommand)) string {
		c := UpdateCommand{Job: "r1/1", Version: "1.2", URL: "http://cp:8080/firmware/" + sha, SHA256: sha, Size: 10, Signature: sig}
		mut(&c)
		return string(c.AppendJSON(nil))
	}
	for _, tc := range []struct {
		name, in, wantErr string
	}{
		{"install", ok(func(*UpdateCommand) {}), ""},
		{"rollback", `{"job":"r1/2","action":"rollback"}`, ""},
		{"no job", ok(func(c *UpdateCommand) { c.Job = "" }), "no job"},
		{"unknown action", `{"job":"j","action":"explode"}`, `unknown action "explode"`},
		{"no version", ok(func(c *UpdateCommand) { c.Version = "" }), "no version"},
		{"bad url", ok(func(c *UpdateCommand) { c.URL = "ftp://x/y" }), "is not http"},
		{"upper-case sha", ok(func(c *UpdateCommand) { c.SHA256 = strings.ToUpper(sha) }), "64 lowercase hex"},
		{"short sha", ok(func(c *UpdateCommand) { c.SHA256 = "abc" }), "64 lowercase hex"},
		{"zero size", ok(func(c *UpdateCommand) { c.Size = 0 }), "size 0 is not positive"},
		{"short signature", ok(func(c *UpdateCommand) { c.Signature = "AAAA" }), "not base64 of 64 bytes"},
		{"not json", "ON", "not a JSON object"},
	} {
		c, err := ParseUpdateCommand([]byte(tc.in))
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("%s: ParseUpdateCommand(%s) = %v", tc.name, tc.in, err)
			}
			if back, err := ParseUpdateCommand(c.AppendJSON(nil)); err != nil || back != c {
				t.Errorf("%s: round trip = %+v, %v; want %+v", tc.name, back, err, c)
			}
			continue
		}
		if err == nil || !errors.Is(err, ErrBadPayload) || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: ParseUpdateCommand error = %v, want one with %q", tc.name, err, tc.wantErr)
		}
	}
}

func TestRunsVersion(t *testing.T) {
	for _, tc := range []struct {
		firmware, version string
		want              bool
	}{
		{"devicefw 1.2", "1.2", true},
		{"1.2", "1.2", true},
		{"devicefw 1.2.1", "1.2", false},
		{"devicefw 11.2", "1.2", false},
		{"devicefw 1.2", "", false},
		{"", "", false},
	} {
		if got := RunsVersion(tc.firmware, tc.version); got != tc.want {
			t.Errorf("RunsVersion(%q, %q) = %v, want %v", tc.firmware, tc.version, got, tc.want)
		}
	}
}

func TestUpdateErrorIs(t *testing.T) {
	if !UpdateErrorIs("checksum: want ab, got cd", UpdateErrChecksum) || !UpdateErrorIs("busy", UpdateErrBusy) || UpdateErrorIs("busybody", UpdateErrBusy) {
		t.Error("UpdateErrorIs does not compare the word before the colon")
	}
}

func TestFleetUpdateReports(t *testing.T) {
	f, err := NewFleet(nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	report := []byte(`{"job":"r1/1","state":"trial","version":"1.2","running":"1.2","progress":100}`)
	evs, err := f.Apply("b1", KindUpdate, report, at, nil)
	if err != nil || len(evs) != 0 || f.Known("b1") {
		t.Fatalf("update from an unknown board: events %v, err %v, known %v; want none, nil, false", evs, err, f.Known("b1"))
	}
	if _, err := f.Apply("b1", KindStatus, []byte("online"), at, nil); err != nil {
		t.Fatal(err)
	}
	evs, err = f.Apply("b1", KindUpdate, report, at, nil)
	if err != nil || len(evs) != 1 {
		t.Fatalf("update: events %v, err %v; want one event", evs, err)
	}
	if got, want := string(evs[0].AppendJSON(nil)), `{"device":"b1","label":"update","value":{"job":"r1/1","state":"trial","version":"1.2","running":"1.2","progress":100}}`; got != want {
		t.Errorf("update event\n got %s\nwant %s", got, want)
	}
	if _, err := f.Apply("b1", KindUpdate, []byte(`{"state":"nope"}`), at, nil); !errors.Is(err, ErrBadPayload) {
		t.Errorf("bad update: err %v, want ErrBadPayload", err)
	}
	d, _ := f.Get("b1")
	if !d.HasUpdate || d.Update.State != UpdateTrial {
		t.Errorf("device update = %v %+v, want the trial report kept", d.HasUpdate, d.Update)
	}
	snap := d.AppendEvents(nil)
	if last := snap[len(snap)-1]; last.Label != LabelUpdate {
		t.Errorf("snapshot's last event is %v, want update", last.Label)
	}
}

func TestBoardInfoJSON(t *testing.T) {
	got := string(BoardInfo{ID: "b1", Firmware: "devicefw 1.2", Board: "sim", IntervalMS: 1000, Platform: "sim", Update: "sim"}.AppendJSON(nil))
	want := `{"id":"b1","firmware":"devicefw 1.2","board":"sim","interval_ms":1000,"platform":"sim","update":"sim"}`
	if got != want {
		t.Errorf("BoardInfo JSON\n got %s\nwant %s", got, want)
	}
	info, err := ParseInfo([]byte(got))
	if err != nil || info.Platform != "sim" || info.Update != "sim" {
		t.Errorf("ParseInfo = %+v, %v; want platform and update sim", info, err)
	}
}
