package mqttnet

import (
	"errors"
	"io"
	"net"
	"testing"
)

// TestConnsCloseAll: CloseAll closes every admitted connection, waits for
// its goroutine to be Done, and admits nothing after.
func TestConnsCloseAll(t *testing.T) {
	var s Conns
	ended := make(chan error, 2)
	for range 2 {
		server, client := net.Pipe()
		defer client.Close()
		if !s.Add(server) {
			t.Fatal("Add before CloseAll = false, want true")
		}
		go func() { // ends when CloseAll closes server
			defer s.Done(server)
			_, err := server.Read(make([]byte, 1))
			ended <- err
		}()
	}
	s.CloseAll() // returns only once both goroutines are Done
	for range 2 {
		if err := <-ended; !errors.Is(err, io.ErrClosedPipe) {
			t.Errorf("read ended with %v, want %v", err, io.ErrClosedPipe)
		}
	}
	late, peer := net.Pipe()
	defer late.Close()
	defer peer.Close()
	if s.Add(late) {
		t.Error("Add after CloseAll = true, want false")
	}
}
