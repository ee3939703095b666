package store

import (
	"context"
	"reflect"
	"testing"

	"switchyard/devices"
)

func testDeviceMeta(t *testing.T, url string) {
	ctx := context.Background()
	db := open(t, url)
	if got, err := db.DeviceMeta(ctx); err != nil || len(got) != 0 {
		t.Fatalf("empty database: %v, %v", got, err)
	}
	saves := []devices.Meta{
		{ID: "zeta", Name: "Zeta", Tags: []string{"a", "b"}, HasTags: true},
		{ID: "alpha", Name: "Küche \"1\""},                               // name only: tags never set
		{ID: "mid", Tags: []string{}, HasTags: true},                     // tags set to none
		{ID: "nil-tags", Tags: nil, HasTags: true},                       // the same, as nil
		{ID: "zeta", Name: "Zeta 2", Tags: []string{"c"}, HasTags: true}, // replaces the first
	}
	for _, m := range saves {
		if err := db.SaveDeviceMeta(ctx, m); err != nil {
			t.Fatalf("SaveDeviceMeta(%+v): %v", m, err)
		}
	}
	want := []devices.Meta{
		{ID: "alpha", Name: "Küche \"1\""},
		{ID: "mid", Tags: []string{}, HasTags: true},
		{ID: "nil-tags", Tags: []string{}, HasTags: true},
		{ID: "zeta", Name: "Zeta 2", Tags: []string{"c"}, HasTags: true},
	}
	check := func(db *DB, when string) {
		t.Helper()
		got, err := db.DeviceMeta(ctx)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: DeviceMeta = %+v, %v;\nwant %+v", when, got, err, want)
		}
	}
	check(db, "saved")
	db.Close()
	check(open(t, url), "after reopen")
}

// A database made by the binary of issue 12 gets the table at its next
// Open, and keeps its rows.
func testDeviceMetaMigrated(t *testing.T, url string) {
	ctx := context.Background()
	saved := migrations
	t.Cleanup(func() { migrations = saved })
	migrations = saved[:1]
	db := open(t, url)
	migrations = saved
	if err := db.AddFirmware(ctx, firmwareN(1)); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db = open(t, url)
	if got := schemaVersion(t, db); got != len(migrations) {
		t.Errorf("schema version %d, want %d", got, len(migrations))
	}
	m := devices.Meta{ID: "b1", Name: "B", Tags: []string{"x"}, HasTags: true}
	if err := db.SaveDeviceMeta(ctx, m); err != nil {
		t.Fatal(err)
	}
	if got, err := db.DeviceMeta(ctx); err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], m) {
		t.Errorf("DeviceMeta = %+v, %v; want %+v", got, err, m)
	}
	if _, err := db.Firmware(ctx, firmwareN(1).SHA256); err != nil {
		t.Errorf("firmware after the migration: %v", err)
	}
}
