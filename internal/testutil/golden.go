package testutil

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// GoldenJSON compares got, a JSON document, indented, with the golden file
// testdata/<name>; with rewrite (a package's -update flag) it writes the
// file first.
func GoldenJSON(t testing.TB, name string, got []byte, rewrite bool) {
	t.Helper()
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, got, "", "  "); err != nil {
		t.Fatalf("%s: invalid JSON %s", name, got)
	}
	pretty.WriteByte('\n')
	p := filepath.Join("testdata", name)
	if rewrite {
		if err := os.WriteFile(p, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Errorf("%s:\ngot:\n%s\nwant:\n%s", name, pretty.Bytes(), want)
	}
}
