package updates

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"switchyard/internal/testutil"
)

func TestFirmwareUploadListDelete(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxSize = 4096 })
	var key struct {
		PublicKey string `json:"public_key"`
	}
	e.must(http.StatusOK, "GET", "/api/update-key", nil, &key)
	pub, err := base64.StdEncoding.DecodeString(key.PublicKey)
	if err != nil || !bytes.Equal(pub, e.key.Public().(ed25519.PublicKey)) {
		t.Fatalf("GET /api/update-key: %q, want the key's public half", key.PublicKey)
	}

	data := build(t, 3000)
	sum := sha256.Sum256(data)
	var up map[string]any
	e.must(http.StatusCreated, "POST", "/api/firmware?version=1.2&platform=linux/arm64", data, &up)
	if up["sha256"] != hex.EncodeToString(sum[:]) || up["version"] != "1.2" || up["platform"] != "linux/arm64" || up["size"] != 3000.0 {
		t.Errorf("upload answered %v", up)
	}
	if at, err := time.Parse(time.RFC3339, up["uploaded"].(string)); err != nil || time.Since(at) > time.Minute {
		t.Errorf("uploaded %v: %v", up["uploaded"], err)
	}
	if len(up) != 5 {
		t.Errorf("upload answered %d keys %v, want sha256, version, platform, size, uploaded", len(up), up)
	}
	// The record holds the signature over the raw digest, by the update key.
	fw, err := e.db.Firmware(t.Context(), hex.EncodeToString(sum[:]))
	if err != nil || !ed25519.Verify(pub, sum[:], fw.Signature) {
		t.Errorf("stored signature does not verify with the update key (%v)", err)
	}

	secondData := build(t, 100)
	second := e.upload("1.3", "linux/arm64", secondData)
	var list []map[string]any
	e.must(http.StatusOK, "GET", "/api/firmware", nil, &list)
	if len(list) != 2 || list[0]["sha256"] != second.SHA256 || list[1]["sha256"] != up["sha256"] {
		t.Errorf("list = %v, want the two builds newest first", list)
	}

	// The same bytes again, whatever they are called: 409 naming them.
	code, body := e.do("POST", "/api/firmware?version=9&platform=sim", data)
	if code != http.StatusConflict || !strings.Contains(string(body), hex.EncodeToString(sum[:])) || !strings.Contains(string(body), "1.2") {
		t.Errorf("same bytes again: %d %s, want 409 naming sha256 and version 1.2", code, body)
	}

	for _, tc := range []struct {
		name, query string
		body        []byte
		chunked     bool
		want        int
		says        string
	}{
		{"no version", "?platform=sim", data, false, http.StatusBadRequest, "version"},
		{"no platform", "?version=1", data, false, http.StatusBadRequest, "platform"},
		{"space in version", "?version=1%202&platform=sim", data, false, http.StatusBadRequest, "version"},
		{"empty", "?version=1&platform=sim", nil, false, http.StatusBadRequest, "empty"},
		{"too large, declared", "?version=1&platform=sim", build(t, 4097), false, http.StatusRequestEntityTooLarge, "firmware.max_size"},
		{"too large, streamed", "?version=1&platform=sim", build(t, 5000), true, http.StatusRequestEntityTooLarge, "firmware.max_size"},
	} {
		var r io.Reader = bytes.NewReader(tc.body)
		if tc.chunked {
			r = io.MultiReader(r) // hides the length: sent chunked
		}
		req, _ := http.NewRequest("POST", e.srv.URL+"/api/firmware"+tc.query, r)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var msg struct{ Error string }
		if resp.StatusCode != tc.want || json.Unmarshal(b, &msg) != nil || !strings.Contains(msg.Error, tc.says) {
			t.Errorf("%s: %d %s, want %d with an error naming %q", tc.name, resp.StatusCode, b, tc.want, tc.says)
		}
	}
	e.must(http.StatusOK, "GET", "/api/firmware", nil, &list)
	if len(list) != 2 {
		t.Errorf("after refused uploads: %d builds, want 2", len(list))
	}

	e.must(http.StatusNoContent, "DELETE", "/api/firmware/"+second.SHA256, nil, nil)
	e.must(http.StatusNotFound, "DELETE", "/api/firmware/"+second.SHA256, nil, nil)
	e.must(http.StatusNotFound, "DELETE", "/api/firmware/nonsense", nil, nil)
	e.must(http.StatusNotFound, "GET", "/firmware/"+second.SHA256, nil, nil)
	e.must(http.StatusOK, "GET", "/api/firmware", nil, &list)
	if len(list) != 1 || list[0]["sha256"] != up["sha256"] {
		t.Errorf("after delete: %v", list)
	}
	// Deleted bytes may come again.
	e.upload("1.3", "linux/arm64", secondData)
}

func TestServeFirmwareRange(t *testing.T) {
	e := newEnv(t)
	data := build(t, 100_000)
	fw := e.upload("2.0", "sim", data)
	before := e.metric("switchyard_firmware_served_bytes_total", "")

	resp, err := http.Get(e.srv.URL + "/firmware/" + fw.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) || resp.Header.Get("Accept-Ranges") != "bytes" {
		t.Fatalf("GET: %s, %d bytes, Accept-Ranges %q; want 200, the build, bytes", resp.Status, len(got), resp.Header.Get("Accept-Ranges"))
	}
	// A board resuming after 60,000 bytes.
	req, _ := http.NewRequest("GET", e.srv.URL+"/firmware/"+fw.SHA256, nil)
	req.Header.Set("Range", "bytes=60000-")
	req.Header.Set("If-Range", resp.Header.Get("ETag"))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, data[60000:]) ||
		resp.Header.Get("Content-Range") != "bytes 60000-99999/100000" {
		t.Errorf("Range: %s %q, %d bytes; want 206 and the last 40,000 bytes", resp.Status, resp.Header.Get("Content-Range"), len(got))
	}
	// The handler counts the bytes once ServeContent has returned, which
	// may be just after the client has read them all: wait for it.
	testutil.WaitFor(t, wait, func() error {
		if got, want := e.metric("switchyard_firmware_served_bytes_total", "")-before, 140_000.0; got != want {
			return fmt.Errorf("bytes served metric grew by %v, want %v", got, want)
		}
		return nil
	})
	e.must(http.StatusNotFound, "GET", "/firmware/"+strings.Repeat("0", 64), nil, nil)
	e.must(http.StatusNotFound, "GET", "/firmware/..%2fswitchyard.db", nil, nil)
}

func TestDownloadsTakeTurns(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxDownloads = 1 })
	data := build(t, 16<<20) // more than the sockets buffer: the first download blocks until it is read
	fw := e.upload("2.0", "sim", data)
	url := e.srv.URL + "/firmware/" + fw.SHA256

	first, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	second := make(chan []byte, 1)
	go func() { // ends when the second download has been read
		resp, err := http.Get(url)
		if err != nil {
			second <- nil
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		second <- b
	}()
	// The second waits its turn while the first streams (no event to wait
	// for: poll the gauge).
	testutil.WaitFor(t, wait, testutil.Until("one download streaming and one waiting", func() bool {
		return e.metric("switchyard_firmware_downloads", "waiting") == 1 && e.metric("switchyard_firmware_downloads", "streaming") == 1
	}))
	got, _ := io.ReadAll(first.Body)
	first.Body.Close()
	if !bytes.Equal(got, data) {
		t.Fatalf("first download: %d bytes, want the build", len(got))
	}
	select {
	case b := <-second:
		if !bytes.Equal(b, data) {
			t.Fatalf("second download: %d bytes, want the build", len(b))
		}
	case <-time.After(wait):
		t.Fatal("the second download did not get its turn after the first")
	}
	testutil.WaitFor(t, wait, testutil.Until("no download left", func() bool {
		return e.metric("switchyard_firmware_downloads", "waiting") == 0 && e.metric("switchyard_firmware_downloads", "streaming") == 0
	}))
}
