package store

import (
	"context"
	"testing"
	"time"

	"switchyard/internal/testutil"
)

// BenchmarkSaveRollout1000 saves a rollout of 1,000 boards of which one
// changed since the last save, as the update service does on every step:
// warm compares with the rows this DB last wrote; cold (after a load, or
// when a control plane takes over) reads them from the database first.
func BenchmarkSaveRollout1000(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		benchSave(b, "sqlite:"+b.TempDir()+"/switchyard.db")
	})
	b.Run("postgres", func(b *testing.B) {
		benchSave(b, testutil.StartPostgres(b))
	})
}

func benchSave(b *testing.B, url string) {
	ctx := context.Background()
	db, err := Open(ctx, url, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	r := testRollout("bench", 1000, time.Now())
	if err := db.CreateRollout(ctx, r); err != nil {
		b.Fatal(err)
	}
	for _, cold := range []bool{false, true} {
		name := "warm"
		if cold {
			name = "cold"
		}
		b.Run(name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				if cold {
					b.StopTimer()
					db.saveMu.Lock()
					clear(db.saved)
					db.saveMu.Unlock()
					b.StartTimer()
				}
				change(r, i%1000, time.Now())
				i++
				if err := db.SaveRollout(ctx, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
