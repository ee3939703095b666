package devices

import (
	"strconv"
	"testing"
	"time"
)

// The hot paths of a board message on its way to the browsers: parsing
// its topic, applying it to the fleet (which yields the event), and
// parsing a browser's command. Encoding is BenchmarkEventEncode in
// wsgateway. Run with `make bench`.

func BenchmarkTopicParse(b *testing.B) {
	t := MustTopics(DefaultPrefix)
	topics := []string{"devices/kitchen/count", "devices/porch-light/led", "devices/b-17/status", "devices/b-17/led/set", "other/x"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, _, ok := t.Parse(topics[i%len(topics)]); !ok && i%len(topics) != 4 {
			b.Fatal("parse failed")
		}
	}
}

func BenchmarkFleetApplyCount(b *testing.B) {
	f, err := NewFleet(nil, 0)
	if err != nil {
		b.Fatal(err)
	}
	at := time.Unix(1_700_000_000, 0)
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = "b-" + strconv.Itoa(i)
		if _, err := f.Apply(ids[i], KindStatus, []byte(Online), at, nil); err != nil {
			b.Fatal(err)
		}
	}
	payloads := make([][]byte, 100)
	for i := range payloads {
		payloads[i] = []byte(strconv.Itoa(i))
	}
	evs := make([]Event, 0, 4)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		evs, err = f.Apply(ids[i%len(ids)], KindCount, payloads[i%len(payloads)], at, evs[:0])
		if err != nil || len(evs) != 1 {
			b.Fatalf("apply: %v, %d events", err, len(evs))
		}
	}
}

func BenchmarkParseBrowserMessage(b *testing.B) {
	msg := []byte(`{"device":"kitchen","action":"toggle"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ParseBrowserMessage(msg); err != nil {
			b.Fatal(err)
		}
	}
}
