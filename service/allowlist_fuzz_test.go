package service

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzAllowList: whatever URL a producer sends, the http kind's
// allow-list lets through only the listed hosts on their ports: a bare
// host or *.domain on the scheme's own port, host:port on that port.
func FuzzAllowList(f *testing.F) {
	for _, s := range []string{"http://hooks.example/x", "https://hooks.example:443/", "http://hooks.example:8080/",
		"https://api.example:8443/a?b", "http://a.corp.example/", "http://corp.example/", "http://a.corp.example.evil/",
		"http://HOOKS.example/", "http://hooks.example.:80/", "http://[::1]:80/", "http://user@hooks.example/"} {
		f.Add(s)
	}
	list := newHostList([]string{"hooks.example", "api.example:8443", "*.corp.example"})
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil || !list.allows(u) {
			return
		}
		host, port := strings.ToLower(u.Hostname()), u.Port()
		def := map[string]string{"http": "80", "https": "443"}[u.Scheme]
		ok := (host == "hooks.example" && (port == "" || port == def)) ||
			(host == "api.example" && port == "8443") ||
			(strings.HasSuffix(host, ".corp.example") && (port == "" || port == def))
		if !ok {
			t.Fatalf("%q allowed: host %q port %q", raw, host, port)
		}
	})
}

// FuzzBearer: a token is read from "Authorization: Bearer <token>" only,
// trimmed, whatever else the header holds.
func FuzzBearer(f *testing.F) {
	for _, s := range []string{"Bearer ordo_abc_def", "bearer  x ", "Basic dXNlcg==", "Bearer", "Bearer\tx", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		r := &http.Request{Header: http.Header{"Authorization": {header}}}
		got := bearer(r)
		if got == "" {
			return
		}
		if len(header) <= 7 || !strings.EqualFold(header[:7], "bearer ") || got != strings.TrimSpace(header[7:]) {
			t.Fatalf("bearer(%q) = %q", header, got)
		}
	})
}
