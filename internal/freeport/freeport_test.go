package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestPickIsFreeAndOutsideEphemeral(t *testing.T) {
	for _, network := range []string{"tcp", "udp"} {
		addr, err := Pick(network)
		if err != nil {
			t.Fatal(err)
		}
		_, p, _ := net.SplitHostPort(addr)
		port, _ := strconv.Atoi(p)
		if port < low || port > high {
			t.Fatalf("%s port %d outside %d-%d", network, port, low, high)
		}
		switch network {
		case "tcp":
			l, err := net.Listen("tcp4", addr)
			if err != nil {
				t.Fatalf("picked %s is not free: %v", addr, err)
			}
			l.Close()
		case "udp":
			l, err := net.ListenPacket("udp4", addr)
			if err != nil {
				t.Fatalf("picked %s is not free: %v", addr, err)
			}
			l.Close()
		}
	}
	if _, err := Pick("sctp"); err == nil {
		t.Fatal("an unknown network is not refused")
	}
}
