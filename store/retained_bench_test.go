package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkRetainedGroupSQLite answers issue 12's question whether the
// broker's retained-message log (broker/store.go) should move into the
// database: it writes a group of 1,000 retained messages (topic, QoS,
// time, a 10-byte payload) as upserts in one transaction, as the log's
// group commit writes them; compare with broker's
// BenchmarkRetainLogGroup (go test -run '^$' -bench RetainedGroup ./store;
// go test -run '^$' -bench RetainLogGroup ./broker).
func BenchmarkRetainedGroupSQLite(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, "sqlite:"+b.TempDir()+"/switchyard.db", Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.db.ExecContext(ctx, `CREATE TABLE retained (topic TEXT PRIMARY KEY, qos INTEGER, created INTEGER, payload BLOB)`); err != nil {
		b.Fatal(err)
	}
	topics := make([]string, 1000)
	for i := range topics {
		topics[i] = fmt.Sprintf("devices/board-%d/led", i)
	}
	payload := []byte("0123456789")
	b.ResetTimer()
	for b.Loop() {
		tx, err := db.db.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		st, err := tx.PrepareContext(ctx, `INSERT INTO retained (topic, qos, created, payload) VALUES (?, ?, ?, ?)
			ON CONFLICT (topic) DO UPDATE SET qos = excluded.qos, created = excluded.created, payload = excluded.payload`)
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now().Unix()
		for _, tp := range topics {
			if _, err := st.ExecContext(ctx, tp, 1, now, payload); err != nil {
				b.Fatal(err)
			}
		}
		st.Close()
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/message")
}
