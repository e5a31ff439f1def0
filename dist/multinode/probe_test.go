package multinode

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

// probeEnv runs the test binary as a TCP echo server ("serve IP:PORT") or as a client
// that measures round trips ("ping IP:PORT N"), for the harness's own tests.
const probeEnv = "LRTRAIN_MULTINODE_PROBE"

// probeResult is what a pinging probe prints.
type probeResult struct {
	RTTs []time.Duration `json:"rtts"`
	Err  string          `json:"err"`
}

func runProbeFromEnv() (bool, int) {
	v, ok := os.LookupEnv(probeEnv)
	if !ok {
		return false, 0
	}
	f := strings.Fields(v)
	switch {
	case len(f) == 2 && f[0] == "serve":
		l, err := net.Listen("tcp", f[1])
		if err != nil {
			fmt.Fprintln(os.Stderr, "probe:", err)
			return true, 1
		}
		fmt.Println("listening")
		for {
			c, err := l.Accept()
			if err != nil {
				return true, 1
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	case len(f) == 3 && f[0] == "ping":
		var n int
		fmt.Sscan(f[2], &n)
		res := ping(f[1], n)
		_ = json.NewEncoder(os.Stdout).Encode(res)
		return true, 0
	}
	fmt.Fprintf(os.Stderr, "probe: %s=%q: want \"serve ADDR\" or \"ping ADDR N\"\n", probeEnv, v)
	return true, 2
}

// ping connects to addr and times n one-byte round trips (3 s to connect, 10 s each).
func ping(addr string, n int) probeResult {
	var res probeResult
	c, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer c.Close()
	b := []byte{0}
	for range n {
		t0 := time.Now()
		_ = c.SetDeadline(t0.Add(10 * time.Second))
		if _, err := c.Write(b); err == nil {
			_, err = io.ReadFull(c, b)
		}
		if err != nil {
			res.Err = err.Error()
			return res
		}
		res.RTTs = append(res.RTTs, time.Since(t0))
	}
	return res
}
