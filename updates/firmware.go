package updates

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"switchyard/devices"
	"switchyard/internal/httpapi"
	"switchyard/rollout"
	"switchyard/store"
)

// The firmware API and the download path.

// maxLabel bounds a build's version and platform.
const maxLabel = 64

// checkLabel checks a version or platform: 1 to 64 printable ASCII
// characters, no space (a board reports "devicefw <version>").
func checkLabel(key, v string) error {
	if v == "" {
		return fmt.Errorf("%s missing: POST /api/firmware?version=V&platform=P with the build as the body", key)
	}
	if len(v) > maxLabel {
		return fmt.Errorf("%s: longer than %d characters", key, maxLabel)
	}
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] > '~' {
			return fmt.Errorf("%s %q: printable characters only, no spaces", key, v)
		}
	}
	return nil
}

// readErr remembers an error reading the request body, to tell a client
// that went away (400) from a disk that failed (500).
type readErr struct {
	r   io.Reader
	err error
}

func (r *readErr) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

func (s *Service) uploadFirmware(w http.ResponseWriter, r *http.Request) {
	version, platform := r.URL.Query().Get("version"), r.URL.Query().Get("platform")
	for _, c := range []struct{ key, v string }{{"version", version}, {"platform", platform}} {
		if err := checkLabel(c.key, c.v); err != nil {
			httpapi.Error(w, http.StatusBadRequest, "%v", err)
			return
		}
	}
	if r.ContentLength > s.cfg.MaxSize {
		httpapi.Error(w, http.StatusRequestEntityTooLarge, "firmware of %d bytes: over firmware.max_size (%d bytes)", r.ContentLength, s.cfg.MaxSize)
		return
	}
	// The server's deadlines (30 s) are for small requests: a build may
	// come slowly, as long as it comes at minRate.
	d := time.Minute + time.Duration(s.cfg.MaxSize/minRate)*time.Second
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(d)) // not every ResponseWriter has them
	_ = rc.SetWriteDeadline(time.Now().Add(d))
	body := &readErr{r: r.Body}
	sha, size, err := s.cfg.Files.Put(body, s.cfg.MaxSize)
	existed := errors.Is(err, store.ErrExists)
	switch {
	case body.err != nil:
		httpapi.Error(w, http.StatusBadRequest, "reading the upload: %v", body.err)
		return
	case errors.Is(err, store.ErrTooLarge):
		httpapi.Error(w, http.StatusRequestEntityTooLarge, "firmware over firmware.max_size (%d bytes)", s.cfg.MaxSize)
		return
	case err != nil && !existed:
		httpapi.Error(w, http.StatusInternalServerError, "%v", err)
		return
	case size == 0:
		if !existed {
			_ = s.cfg.Files.Remove(sha)
		}
		httpapi.Error(w, http.StatusBadRequest, "empty body: send the build's bytes")
		return
	}
	digest, _ := hex.DecodeString(sha)
	fw := rollout.Firmware{
		SHA256: sha, Version: version, Platform: platform, Size: size,
		Uploaded: s.cfg.Now().UTC(), Signature: ed25519.Sign(s.cfg.Key, digest),
	}
	ctx := r.Context()
	s.createMu.Lock()
	defer s.createMu.Unlock()
	if existed {
		// The bytes were there before this upload: recorded (409), or a
		// file an earlier upload left without its record (recorded now).
		if old, err := s.cfg.Store.Firmware(ctx, sha); err == nil {
			conflict(w, old)
			return
		}
		f, err := s.cfg.Files.Open(sha)
		if err != nil { // deleted meanwhile
			httpapi.Error(w, http.StatusConflict, "firmware %s was deleted while it was uploaded: upload it again", sha)
			return
		}
		f.Close()
	}
	if err := s.cfg.Store.AddFirmware(ctx, fw); err != nil {
		if errors.Is(err, store.ErrExists) { // the same bytes uploaded at the same time
			if old, err := s.cfg.Store.Firmware(ctx, sha); err == nil {
				conflict(w, old)
				return
			}
		}
		if !existed {
			_ = s.cfg.Files.Remove(sha) // no record points to it
		}
		httpapi.Error(w, http.StatusInternalServerError, "%v", err)
		return
	}
	setAuditTarget(r, sha)
	s.log.Info("firmware uploaded", "sha256", sha, "version", version, "platform", platform, "size", size)
	httpapi.WriteJSON(w, http.StatusCreated, fw)
}

// conflict answers 409 naming the build that has these bytes already.
func conflict(w http.ResponseWriter, old rollout.Firmware) {
	httpapi.WriteJSON(w, http.StatusConflict, map[string]any{
		"error": fmt.Sprintf("these bytes are uploaded already: firmware %s, version %s for %s, uploaded %s",
			old.SHA256, old.Version, old.Platform, old.Uploaded.UTC().Format(time.RFC3339)),
		"firmware": old,
	})
}

func (s *Service) listFirmware(w http.ResponseWriter, r *http.Request) {
	fws, err := s.cfg.Store.ListFirmware(r.Context())
	if err != nil {
		httpapi.Error(w, http.StatusInternalServerError, "%v", err)
		return
	}
	if fws == nil {
		fws = []rollout.Firmware{}
	}
	httpapi.WriteJSON(w, http.StatusOK, fws)
}

func (s *Service) deleteFirmware(w http.ResponseWriter, r *http.Request) {
	sha := r.PathValue("sha")
	if !devices.ValidSHA256(sha) {
		httpapi.Error(w, http.StatusNotFound, "firmware %q: not a SHA-256 (64 lowercase hex digits)", sha)
		return
	}
	s.createMu.Lock()
	defer s.createMu.Unlock()
	if id := s.rolloutUsing(sha); id != "" {
		httpapi.Error(w, http.StatusConflict, "firmware %s is used by rollout %s, which is not finished: abort it or let it finish first", sha, id)
		return
	}
	if err := s.cfg.Store.DeleteFirmware(r.Context(), sha); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			httpapi.Error(w, http.StatusNotFound, "firmware %s: no such build", sha)
			return
		}
		httpapi.Error(w, http.StatusInternalServerError, "%v", err)
		return
	}
	if err := s.cfg.Files.Remove(sha); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Error("firmware record deleted, its file not", "sha256", sha, "err", err)
	}
	s.log.Info("firmware deleted", "sha256", sha)
	w.WriteHeader(http.StatusNoContent)
}

// rolloutUsing returns the id of a rollout not finished that installs
// sha, or "".
func (s *Service) rolloutUsing(sha string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.rollouts {
		if e.r.Firmware == sha && !e.r.State.Finished() {
			return e.r.ID
		}
	}
	return ""
}

// minRate is the slowest transfer of a build: the deadline of an upload,
// and of a download by a board, is a minute plus the size at this rate, in
// place of the HTTP server's 30 s for every request.
const minRate = 16 << 10 // bytes a second

// serveFirmware streams a build from its file (Range supported, so a
// board resumes a download); it never holds the build in memory.
func (s *Service) serveFirmware(w http.ResponseWriter, r *http.Request) {
	sha := r.PathValue("sha")
	f, err := s.cfg.Files.Open(sha)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			httpapi.Error(w, http.StatusNotFound, "firmware %q: no such build", sha)
			return
		}
		httpapi.Error(w, http.StatusInternalServerError, "%v", err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		httpapi.Error(w, http.StatusInternalServerError, "firmware %s: %v", sha, err)
		return
	}
	waiting, streaming := s.downloads.WithLabelValues("waiting"), s.downloads.WithLabelValues("streaming")
	waiting.Inc()
	select { // wait for a turn: see Config.MaxDownloads
	case s.slots <- struct{}{}:
		waiting.Dec()
		streaming.Inc()
		defer func() { streaming.Dec(); <-s.slots }()
	case <-r.Context().Done():
		waiting.Dec()
		return // the board gave up (or the server is shutting down)
	}
	deadline := time.Minute + time.Duration(fi.Size()/minRate)*time.Second
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(deadline)) // not every ResponseWriter has one
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", strconv.Quote(sha))
	cw := &countingWriter{ResponseWriter: w}
	http.ServeContent(cw, r, "", fi.ModTime(), f)
	s.served.Add(float64(cw.n))
}

// countingWriter counts the body bytes written. It passes ReadFrom on to
// the connection, so that the file is sent with sendfile, not through a
// buffer.
type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

func (c *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	var n int64
	var err error
	if rf, ok := c.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(struct{ io.Writer }{c.ResponseWriter}, r)
	}
	c.n += n
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (c *countingWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }
