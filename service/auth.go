package service

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/config"
	"github.com/ordo-sched/ordo/driver"
)

// principal is who a request acts as.
type principal struct {
	admin  bool
	tenant string // the one tenant of a tenant token
	name   string // for logs: the token's name or id
}

// mayActFor reports whether p may read or change tenant's jobs.
func (p principal) mayActFor(tenant string) bool { return p.admin || p.tenant == tenant }

// authenticator resolves bearer tokens: those of the configuration
// (Ordo:Auth:Tokens, by SHA-256, swapped on reload), then those of the
// database (scheduler.api_tokens).
type authenticator struct {
	configured atomic.Pointer[map[[32]byte]principal]
	store      driver.Tokens
	now        func() time.Time // for tokens' expiry
}

func newAuthenticator(tokens []config.Token, store driver.Tokens, now func() time.Time) *authenticator {
	a := &authenticator{store: store, now: now}
	a.setConfigTokens(tokens)
	return a
}

func (a *authenticator) setConfigTokens(tokens []config.Token) {
	m := make(map[[32]byte]principal, len(tokens))
	for i, t := range tokens {
		var h [32]byte
		if b, err := hex.DecodeString(strings.ToLower(strings.TrimSpace(t.Sha256))); err == nil && len(b) == 32 {
			copy(h[:], b) // validated by the config package
		}
		name := t.Name
		if name == "" {
			name = fmt.Sprintf("Ordo:Auth:Tokens:%d", i)
		}
		m[h] = principal{admin: t.Admin, tenant: t.Tenant, name: name}
	}
	a.configured.Store(&m)
}

var (
	errNoToken  = errors.New("missing bearer token: send Authorization: Bearer <token>")
	errBadToken = errors.New("invalid or revoked token")
)

// authenticate resolves the text of a bearer token.
func (a *authenticator) authenticate(ctx context.Context, token string) (principal, error) {
	if token == "" {
		return principal{}, errNoToken
	}
	return a.byHash(ctx, sha256.Sum256([]byte(token)))
}

// byHash resolves a token by its SHA-256: configured tokens first (as
// reloaded), then the database's; a revoked or expired one is
// errBadToken. The API's bearer tokens and the dashboard's sessions are
// both checked here, on every request.
func (a *authenticator) byHash(ctx context.Context, h [32]byte) (principal, error) {
	if p, ok := (*a.configured.Load())[h]; ok {
		return p, nil
	}
	if a.store == nil {
		return principal{}, errBadToken
	}
	t, err := a.store.TokenByHash(ctx, h)
	if errors.Is(err, driver.ErrTokenNotFound) {
		return principal{}, errBadToken
	}
	if err != nil {
		return principal{}, err
	}
	if !t.RevokedAt.IsZero() || !t.ExpiresAt.IsZero() && !a.now().Before(t.ExpiresAt) {
		return principal{}, errBadToken
	}
	return principal{admin: t.Admin, tenant: t.TenantID, name: t.ID}, nil
}

// TokenPrefix starts every token `ordo token create` makes, so secret
// scanners can find leaked ones.
const TokenPrefix = "ordo_"

// NewToken makes a token for tenant (or an admin token, with admin): its
// text, shown to the user once, and the record driver.Tokens keeps (its
// SHA-256, never its text). The text is "ordo_<id>_<secret>": the id,
// which `ordo token list` shows and `ordo token revoke` takes, and 256
// random bits.
func NewToken(tenant string, admin bool, name string, now time.Time) (text string, rec driver.APIToken, err error) {
	if admin == (tenant != "") {
		return "", rec, errors.New("a token is for one tenant or, as an admin token, for all: give exactly one")
	}
	if !admin {
		if err := chain.ValidateTenantID(tenant); err != nil {
			return "", rec, err
		}
	}
	var idb [6]byte
	var secret [32]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return "", rec, err
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return "", rec, err
	}
	id := "tok_" + hex.EncodeToString(idb[:])
	text = TokenPrefix + strings.TrimPrefix(id, "tok_") + "_" + base64.RawURLEncoding.EncodeToString(secret[:])
	return text, driver.APIToken{ID: id, Hash: sha256.Sum256([]byte(text)), TenantID: tenant, Admin: admin, Name: name, CreatedAt: now}, nil
}

// HashToken returns the hex SHA-256 of a token's text, as
// Ordo:Auth:Tokens:N:Sha256 takes it.
func HashToken(text string) string {
	h := sha256.Sum256([]byte(text))
	return hex.EncodeToString(h[:])
}

func shortRandom() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
