//go:build !linux

package loadgen

import (
	"errors"
	"sync"
)

// pollReaders needs Linux (epoll); Config.Readers "epoll" fails elsewhere.
type pollReaders struct{}

func newPollReaders(n, browsers int) (*pollReaders, error) {
	return nil, errors.New("epoll readers: Linux only")
}

func (p *pollReaders) add(b *browser) error { return errors.New("epoll readers: Linux only") }
func (p *pollReaders) close()               {}

func (b *browser) pollStart(*sync.WaitGroup) error   { return errors.New("epoll readers: Linux only") }
func (b *browser) pollWrite(op byte, _ []byte) error { return errors.New("epoll readers: Linux only") }
func (b *browser) pollShutdown()                     {}
func (b *browser) pollEnd()                          {}
func (b *browser) pollConnectMQTT(*sync.WaitGroup) error {
	return errors.New("epoll readers: Linux only")
}
