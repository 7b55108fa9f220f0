package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuSample is a point-in-time reading of this process's CPU time and of
// the local PostgreSQL server's: its postmaster and every child of it
// (backends, background workers), found from a backend's pid.
type cpuSample struct {
	proc   time.Duration
	server time.Duration
	// serverOK is false when the server's processes are not readable (a
	// remote server): server CPU is then not reported.
	serverOK bool
}

// sampleCPU reads this process's CPU and, if postmaster > 0, the server's.
func sampleCPU(postmaster int) cpuSample {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	s := cpuSample{proc: tvDuration(ru.Utime) + tvDuration(ru.Stime)}
	if postmaster > 0 {
		s.server, s.serverOK = serverCPU(postmaster)
	}
	return s
}

func tvDuration(tv syscall.Timeval) time.Duration {
	return time.Duration(tv.Sec)*time.Second + time.Duration(tv.Usec)*time.Microsecond
}

// cpuDelta is the CPU seconds spent between two samples; server is -1 when
// unknown.
func cpuDelta(a, b cpuSample) (proc, server float64) {
	proc = (b.proc - a.proc).Seconds()
	server = -1
	if a.serverOK && b.serverOK {
		server = (b.server - a.server).Seconds()
	}
	return proc, server
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat; it
// is 100 on every Linux architecture Go supports.
const clockTicks = 100

// procStat is what serverCPU needs of /proc/PID/stat.
type procStat struct {
	ppid  int
	ticks int64 // utime + stime
	// reaped is cutime + cstime: the CPU of the process's children that
	// have exited and been waited for.
	reaped int64
}

func readProcStat(pid string) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return procStat{}, false
	}
	// Fields after the parenthesised command name start with field 3
	// (state); ppid is field 4, utime and stime fields 14 and 15, cutime
	// and cstime 16 and 17.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return procStat{}, false
	}
	ppid, err0 := strconv.Atoi(f[1])
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	cu, err3 := strconv.ParseInt(f[13], 10, 64)
	cs, err4 := strconv.ParseInt(f[14], 10, 64)
	if err0 != nil || err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return procStat{}, false
	}
	return procStat{ppid: ppid, ticks: u + s, reaped: cu + cs}, true
}

// postmasterOf returns the parent of the backend with pid backend if that
// process is visible here and is a PostgreSQL server, else 0.
func postmasterOf(backend int) int {
	st, ok := readProcStat(strconv.Itoa(backend))
	if !ok {
		return 0
	}
	cmd, err := os.ReadFile("/proc/" + strconv.Itoa(st.ppid) + "/cmdline")
	if err != nil || !bytes.Contains(cmd, []byte("postgres")) {
		return 0
	}
	return st.ppid
}

// serverCPU sums utime+stime of the postmaster and its children, plus
// the postmaster's cutime+cstime: a backend that exits between two samples
// moves its CPU there once the postmaster has waited for it, so it stays
// in the sum (a backend that has exited but is not yet waited for still
// shows its own times).
func serverCPU(postmaster int) (time.Duration, bool) {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return 0, false
	}
	pm := strconv.Itoa(postmaster)
	var ticks int64
	found := false
	for _, d := range dirs {
		pid := filepath.Base(d)
		st, ok := readProcStat(pid)
		if !ok || (pid != pm && st.ppid != postmaster) {
			continue
		}
		ticks += st.ticks
		if pid == pm {
			ticks += st.reaped
		}
		found = true
	}
	return time.Duration(ticks) * time.Second / clockTicks, found
}

// peakRSSMB reads VmHWM (peak resident set size) of this process in MB.
func peakRSSMB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return -1
			}
			return kb / 1024
		}
	}
	return -1
}

// fsType names the file system holding path when it is on this machine
// ("" if unknown or not readable here, e.g. a remote server's directory).
func fsType(path string) string {
	if path == "" {
		return ""
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return ""
	}
	switch uint64(st.Type) {
	case 0xEF53:
		return "ext2/3/4"
	case 0x58465342:
		return "xfs"
	case 0x9123683E:
		return "btrfs"
	case 0x01021994:
		return "tmpfs"
	case 0x794C7630:
		return "overlayfs"
	case 0x2FC12FC1:
		return "zfs"
	}
	return fmt.Sprintf("file system type %#x", uint64(st.Type))
}
