package config

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/queue"
)

// Limits of the values Validate accepts.
const (
	MaxPayloadBytesLimit      = 64 << 20
	MaxBodyBytesLimit         = 1 << 30
	MaxBatchJobsLimit         = 10_000
	MaxConcurrentBatchesLimit = 1000
	MaxDequeueLimit           = 1000
	MaxWorkersLimit           = 10_000
	MaxDemoRate               = 1000.0
	// MinRetention and MaxRetention bound a non-zero Ordo:Retention
	// duration: a minute is shorter than anyone means, ten years longer.
	MinRetention = time.Minute
	MaxRetention = 10 * 365 * 24 * time.Hour
	// MinLogPartitionPeriod and MaxLogPartitionPeriod bound a non-zero
	// Ordo:Database:LogPartitionPeriod: shorter than an hour makes
	// thousands of partitions a year, longer than a year keeps archived
	// history in the database for as long.
	MinLogPartitionPeriod = time.Hour
	MaxLogPartitionPeriod = 366 * 24 * time.Hour
)

// Validate checks every value and returns every problem at once; nil when
// the configuration is valid. Load calls it; call it again after changing
// a Config by hand.
func (c *Config) Validate() error {
	if p := c.validate(func(string) string { return "" }); len(p) > 0 {
		return &Error{Problems: p}
	}
	return nil
}

func (c *Config) validate(origin func(key string) string) []Problem {
	var out []Problem
	bad := func(key string, value any, want string, args ...any) {
		v := ""
		switch x := value.(type) {
		case nil:
		case string:
			v = strconv.Quote(x)
		case time.Duration:
			v = x.String()
		default:
			v = fmt.Sprint(x)
		}
		out = append(out, Problem{Key: key, Value: v, Origin: origin(key), Want: fmt.Sprintf(want, args...)})
	}
	intRange := func(key string, v, lo, hi int) {
		if v < lo || v > hi {
			bad(key, v, "want %d..%d", lo, hi)
		}
	}
	durRange := func(key string, v, lo, hi time.Duration) {
		if v < lo || v > hi {
			bad(key, v, "want %v..%v", lo, hi)
		}
	}

	h := c.Scheduler.Queue.Hlc
	intRange("Scheduler:Queue:Hlc:MaxClockDriftMs", h.MaxClockDriftMs, 1, queue.MaxClockDriftMsLimit)

	o := &c.Ordo
	if err := hlc.ValidateNodeID(o.NodeId); err != nil {
		bad("Ordo:NodeId", o.NodeId, "want 1 to %d characters of A-Z a-z 0-9 . _ - starting with a letter or digit, stable across restarts and unique among nodes (set Ordo:NodeId or --node)", hlc.MaxNodeIDLen)
	}
	if msg := checkDatabaseURL(o.Database.Url); msg != "" {
		bad("Ordo:Database:Url", RedactURL(o.Database.Url), "%s", msg)
	}
	if d := o.Database.LogPartitionPeriod; d != 0 && (d < MinLogPartitionPeriod || d > MaxLogPartitionPeriod) {
		bad("Ordo:Database:LogPartitionPeriod", d, "want 0 (no partitions made) or %v..%v", MinLogPartitionPeriod, MaxLogPartitionPeriod)
	}

	if msg := checkListen(o.Http.Listen); msg != "" {
		bad("Ordo:Http:Listen", o.Http.Listen, "%s", msg)
	}
	intRange("Ordo:Http:MaxPayloadBytes", o.Http.MaxPayloadBytes, 1, MaxPayloadBytesLimit)
	if o.Http.MaxBodyBytes < o.Http.MaxPayloadBytes || o.Http.MaxBodyBytes > MaxBodyBytesLimit {
		bad("Ordo:Http:MaxBodyBytes", o.Http.MaxBodyBytes, "want Ordo:Http:MaxPayloadBytes (%d)..%d", o.Http.MaxPayloadBytes, MaxBodyBytesLimit)
	}
	intRange("Ordo:Http:MaxBatchJobs", o.Http.MaxBatchJobs, 1, MaxBatchJobsLimit)
	intRange("Ordo:Http:MaxDequeue", o.Http.MaxDequeue, 1, MaxDequeueLimit)
	durRange("Ordo:Http:ShutdownTimeout", o.Http.ShutdownTimeout, 0, time.Hour)
	switch o.Http.MetricsAuth {
	case MetricsAuthAuto, MetricsAuthToken, MetricsAuthNone:
	default:
		bad("Ordo:Http:MetricsAuth", o.Http.MetricsAuth, "want auto, token or none")
	}
	intRange("Ordo:Http:AuthFailuresPerMinute", o.Http.AuthFailuresPerMinute, 1, 1_000_000)
	intRange("Ordo:Http:MaxSessions", o.Http.MaxSessions, 1, 10_000_000)
	intRange("Ordo:Http:MaxSessionsPerToken", o.Http.MaxSessionsPerToken, 1, 10_000)
	intRange("Ordo:Http:MaxConcurrentBatches", o.Http.MaxConcurrentBatches, 1, MaxConcurrentBatchesLimit)
	durRange("Ordo:Http:ReadHeaderTimeout", o.Http.ReadHeaderTimeout, time.Millisecond, time.Hour)
	durRange("Ordo:Http:ReadTimeout", o.Http.ReadTimeout, time.Millisecond, time.Hour)
	durRange("Ordo:Http:WriteTimeout", o.Http.WriteTimeout, time.Millisecond, time.Hour)
	durRange("Ordo:Http:IdleTimeout", o.Http.IdleTimeout, time.Millisecond, time.Hour)

	seen := map[string]int{}
	for i, t := range o.Auth.Tokens {
		key := fmt.Sprintf("Ordo:Auth:Tokens:%d", i)
		switch {
		case t.Admin && t.Tenant != "":
			bad(key+":Tenant", t.Tenant, "want no tenant on an admin token (Admin: true acts for every tenant)")
		case !t.Admin && t.Tenant == "":
			bad(key+":Tenant", "", "want a tenant id, or Admin: true")
		case !t.Admin:
			if err := chain.ValidateTenantID(t.Tenant); err != nil {
				bad(key+":Tenant", t.Tenant, "want a tenant id: 1 to 64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit")
			}
		}
		sum := strings.ToLower(strings.TrimSpace(t.Sha256))
		if b, err := hex.DecodeString(sum); err != nil || len(b) != 32 {
			bad(key+":Sha256", shorten(t.Sha256), "want the token's SHA-256 as 64 hex digits (`ordo token hash`)")
		} else if j, dup := seen[sum]; dup {
			bad(key+":Sha256", shorten(t.Sha256), "want a hash not already listed (Ordo:Auth:Tokens:%d has it)", j)
		} else {
			seen[sum] = i
		}
		if len(t.Name) > 100 {
			bad(key+":Name", shorten(t.Name), "want at most 100 characters")
		}
	}

	w := &o.Worker
	intRange("Ordo:Worker:MaxWorkers", w.MaxWorkers, 1, MaxWorkersLimit)
	durRange("Ordo:Worker:LeaseFor", w.LeaseFor, time.Second, 24*time.Hour)
	durRange("Ordo:Worker:PollInterval", w.PollInterval, time.Millisecond, time.Hour)
	durRange("Ordo:Worker:Timeout", w.Timeout, time.Millisecond, 24*time.Hour)
	for i, host := range w.HttpKind.AllowedHosts {
		if msg := checkHostPattern(host); msg != "" {
			bad(fmt.Sprintf("Ordo:Worker:HttpKind:AllowedHosts:%d", i), host, "%s", msg)
		}
	}
	durRange("Ordo:Worker:HttpKind:Timeout", w.HttpKind.Timeout, time.Millisecond, time.Hour)

	for _, r := range []struct {
		key string
		v   time.Duration
	}{{"Succeeded", o.Retention.Succeeded}, {"Cancelled", o.Retention.Cancelled}, {"Failed", o.Retention.Failed}} {
		if r.v != 0 && (r.v < MinRetention || r.v > MaxRetention) {
			bad("Ordo:Retention:"+r.key, r.v, "want 0 (keep forever) or %v..%v", MinRetention, MaxRetention)
		}
	}

	if o.Demo.Rate <= 0 || o.Demo.Rate > MaxDemoRate {
		bad("Ordo:Demo:Rate", o.Demo.Rate, "want more than 0 and at most %v jobs per second", MaxDemoRate)
	}
	if len(o.Demo.Tenants) == 0 {
		bad("Ordo:Demo:Tenants", nil, "want at least one tenant")
	}
	for i, t := range o.Demo.Tenants {
		if err := chain.ValidateTenantID(t); err != nil {
			bad(fmt.Sprintf("Ordo:Demo:Tenants:%d", i), t, "want a tenant id: 1 to 64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit")
		}
	}

	if f := o.Audit.PublicKeyFile; f != "" {
		if st, err := os.Stat(f); err != nil || st.IsDir() {
			bad("Ordo:Audit:PublicKeyFile", f, "want a readable file holding the checkpointer's public key (`ordo keygen` writes PREFIX.pub)")
		}
	}
	if f := o.Audit.SigningKeyFile; f != "" {
		if st, err := os.Stat(f); err != nil || st.IsDir() {
			bad("Ordo:Audit:SigningKeyFile", f, "want a readable file holding this node's private key (`ordo keygen` writes PREFIX.key)")
		}
	}
	durRange("Ordo:Audit:CheckpointInterval", o.Audit.CheckpointInterval, 0, 24*time.Hour)
	durRange("Ordo:Audit:VerifyInterval", o.Audit.VerifyInterval, 0, 24*time.Hour)
	for i, t := range o.Audit.PublicTiles {
		if err := chain.ValidateTenantID(t); err != nil {
			bad(fmt.Sprintf("Ordo:Audit:PublicTiles:%d", i), t, "want a tenant id: 1 to 64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit")
		}
	}
	witnessKeys := map[string]bool{}
	for i, w := range o.Audit.Witnesses {
		field := fmt.Sprintf("Ordo:Audit:Witnesses:%d", i)
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			bad(field+":URL", w.URL, "want the witness's http or https URL prefix (checkpoints are posted to URL/add-checkpoint)")
		}
		k, err := audit.ParseWitnessKey(w.Key)
		switch {
		case err != nil:
			bad(field+":Key", w.Key, "want the witness's verifier key <name>+<hash>+<base64> (C2SP tlog-cosignature, as litewitness prints it): %v", err)
		case witnessKeys[k.KeyID()]:
			bad(field+":Key", w.Key, "this witness key is listed twice")
		default:
			witnessKeys[k.KeyID()] = true
		}
	}
	if len(o.Audit.Witnesses) > 0 && o.Audit.SigningKeyFile == "" {
		bad("Ordo:Audit:Witnesses", len(o.Audit.Witnesses), "needs Ordo:Audit:SigningKeyFile: only signed checkpoints are witnessed")
	}
	if o.Audit.SnapshotOnDequeue && o.Audit.SigningKeyFile == "" {
		bad("Ordo:Audit:SnapshotOnDequeue", true, "needs Ordo:Audit:SigningKeyFile: snapshots are signed")
	}

	durRange("Ordo:Reload:PollInterval", o.Reload.PollInterval, 0, 24*time.Hour)
	switch strings.ToLower(o.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("Ordo:Log:Level", o.Log.Level, "want debug, info, warn or error")
	}
	switch strings.ToLower(o.Log.Format) {
	case "text", "json":
	default:
		bad("Ordo:Log:Format", o.Log.Format, "want text or json")
	}
	return out
}

func shorten(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

func checkDatabaseURL(u string) string {
	switch {
	case strings.HasPrefix(u, "postgres://"), strings.HasPrefix(u, "postgresql://"):
		if len(u) == len("postgres://") {
			return "want postgres://user@host/db"
		}
		return ""
	case strings.HasPrefix(u, "sqlite:"):
		if strings.TrimPrefix(strings.TrimPrefix(u, "sqlite:"), "//") == "" {
			return "want sqlite:PATH, e.g. sqlite:ordo.db"
		}
		return ""
	}
	return "want postgres://... or sqlite:PATH"
}

func checkListen(addr string) string {
	const want = "want host:port, e.g. 127.0.0.1:8080 or :8080 (port 0 picks a free one)"
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return want
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return want
	}
	if strings.ContainsAny(host, "/ ") {
		return want
	}
	return ""
}

// checkHostPattern checks one Ordo:Worker:HttpKind:AllowedHosts entry.
func checkHostPattern(p string) string {
	const want = `want a host ("api.example.com"), a host and port ("api.example.com:8443", "127.0.0.1:9000") or "*.example.com"; no scheme or path`
	if p == "" || strings.ContainsAny(p, "/?#@ ") {
		return want
	}
	host := p
	if h, port, err := net.SplitHostPort(p); err == nil {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return want
		}
		host = h
	} else if strings.Count(p, ":") > 0 && !strings.HasPrefix(p, "[") && net.ParseIP(p) == nil {
		return want
	}
	host = strings.TrimPrefix(host, "*.")
	if host == "" || strings.Contains(host, "*") {
		return want
	}
	return ""
}
