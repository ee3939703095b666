package broker

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"switchyard/devices"
)

// BenchmarkRetainLogGroup writes a group of 1,000 retained messages to the
// retained-message log (append and fsync, the writer's group commit); see
// store's BenchmarkRetainedGroupSQLite for the same in SQLite.
func BenchmarkRetainLogGroup(b *testing.B) {
	l, err := openRetainLog(filepath.Join(b.TempDir(), "retained.log"), devices.MustTopics("devices"), discard())
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	topics := make([]string, 1000)
	for i := range topics {
		topics[i] = fmt.Sprintf("devices/board-%d/led", i)
	}
	payload := []byte("0123456789")
	b.ResetTimer()
	for b.Loop() {
		now := time.Now().Unix()
		l.mu.Lock()
		for _, tp := range topics {
			l.pending[tp] = retainRecord{qos: 1, created: now, payload: payload}
		}
		l.mu.Unlock()
		l.flush() // as the writer goroutine does; it may also run it, harmlessly
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/message")
}
