// Package freeport picks loopback ports for servers that tests, demos and
// benchmarks start and then hand to other processes by number. Ports come
// from below the kernel's ephemeral range (32768–60999 on Linux), so an
// outgoing connection can never take a picked port between the pick and
// the bind: the cause of "address already in use" when many clusters start
// at once. Safe for concurrent use.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
)

// The range ports are picked from: above the well-known and most registered
// service ports, below the ephemeral range.
const (
	low  = 20000
	high = 32767
)

// Pick returns "127.0.0.1:PORT" for a port that was free for network
// ("tcp" or "udp") a moment ago.
func Pick(network string) (string, error) {
	for range 200 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(low+rand.IntN(high-low+1)))
		switch network {
		case "tcp":
			l, err := net.Listen("tcp4", addr)
			if err != nil {
				continue
			}
			l.Close()
		case "udp":
			l, err := net.ListenPacket("udp4", addr)
			if err != nil {
				continue
			}
			l.Close()
		default:
			return "", fmt.Errorf("free port: unknown network %q", network)
		}
		return addr, nil
	}
	return "", fmt.Errorf("no free %s port in %d-%d", network, low, high)
}
