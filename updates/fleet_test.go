package updates

import (
	"testing"
	"time"

	"switchyard/devices"
	"switchyard/rollout"
)

// TestFleetView feeds board messages to the view and reads what a rollout
// sees, in order.
func TestFleetView(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(s int) time.Time { return start.Add(time.Duration(s) * time.Second) }
	tp := devices.MustTopics("devices")
	f := newFleetView(tp, start)
	info := devices.BoardInfo{ID: "b1", Firmware: "devicefw 1.0", Board: "x", Platform: "sim", Update: "sim"}.AppendJSON(nil)
	report := devices.UpdateReport{Job: "r/1", State: devices.UpdateConfirmed, Version: "2.0", Running: "2.0"}.AppendJSON(nil)
	for i, step := range []struct {
		topic, payload string
		at             int
		wake           bool
		want           rollout.View
	}{
		{tp.Status("b1"), "offline", 1, false, rollout.View{Known: true, Since: at(1)}}, // a retained offline after a restart
		{tp.LEDSet("b1"), "ON", 2, false, rollout.View{Known: true, Since: at(1)}},      // commands are not the board's
		{tp.Status("b1"), "online", 3, true, rollout.View{Known: true, Online: true, Since: at(3)}},
		{tp.Count("b1"), "5", 4, false, rollout.View{Known: true, Online: true, Since: at(3), LastCount: at(4)}},
		{tp.Count("b1"), "5", 5, false, rollout.View{Known: true, Online: true, Since: at(3), LastCount: at(4)}}, // not advancing
		{tp.Count("b1"), "x", 6, false, rollout.View{Known: true, Online: true, Since: at(3), LastCount: at(4)}},
		{tp.Info("b1"), string(info), 7, true, rollout.View{Known: true, Online: true, Firmware: "devicefw 1.0", Since: at(3), LastCount: at(4)}},
		{tp.Info("b1"), string(info), 8, false, rollout.View{Known: true, Online: true, Firmware: "devicefw 1.0", Since: at(3), LastCount: at(4)}},
		{tp.Update("b1"), string(report), 9, true, rollout.View{Known: true, Online: true, Firmware: "devicefw 1.0", Since: at(3), LastCount: at(4),
			HasReport: true, Report: rollout.ReportView{Job: "r/1", State: "confirmed", Version: "2.0", Running: "2.0"}}},
		{tp.Status("b1"), "", 10, true, rollout.View{Since: start}}, // forgotten
		{tp.Update("b2"), string(report), 11, true, rollout.View{Since: at(11), HasReport: true,
			Report: rollout.ReportView{Job: "r/1", State: "confirmed", Version: "2.0", Running: "2.0"}}}, // a report makes no board known
		{tp.Count("b3"), "1", 12, true, rollout.View{Known: true, Online: true, Since: at(12), LastCount: at(12)}}, // counting: online
	} {
		if wake := f.apply(step.topic, []byte(step.payload), at(step.at)); wake != step.wake {
			t.Errorf("step %d (%s %q): wake %v, want %v", i, step.topic, step.payload, wake, step.wake)
		}
		id, _, _ := tp.Parse(step.topic)
		if got := f.View(id); got != step.want {
			t.Errorf("step %d (%s %q): view\n got %+v\nwant %+v", i, step.topic, step.payload, got, step.want)
		}
	}
	if got := f.known(); len(got) != 1 || got[0] != "b3" {
		t.Errorf("known = %v, want [b3] (b1 forgotten, b2 only reported)", got)
	}
}

// TestIngestCountAllocatesNothing: a count, every second from every
// board, costs no allocation.
func TestIngestCountAllocatesNothing(t *testing.T) {
	f := newFleetView(devices.MustTopics("devices"), time.Now())
	f.apply("devices/b1/status", []byte("online"), time.Now())
	topic, payload, now := "devices/b1/count", []byte("41"), time.Now()
	if n := testing.AllocsPerRun(100, func() { f.apply(topic, payload, now) }); n != 0 {
		t.Errorf("a count allocates %v times, want 0", n)
	}
}

func TestCastPause(t *testing.T) {
	for _, c := range []struct {
		n    int
		want time.Duration
	}{
		{0, broadcastEvery},
		{2 << 10, broadcastEvery}, // a small rollout: four a second
		{castRate / 2, 500 * time.Millisecond},
		{castRate, time.Second},            // about 1,000 boards
		{20 * castRate, maxBroadcastEvery}, // bounded
	} {
		if got := castPause(c.n); got != c.want {
			t.Errorf("castPause(%d): got %v, want %v", c.n, got, c.want)
		}
	}
}
