package main

import (
	"bufio"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/service"
	"github.com/ordo-sched/ordo/store"
)

func newTokenCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke the bearer tokens of the HTTP API",
		Long: `Tokens created here live in the database (scheduler.api_tokens), hashed: the token itself is printed once,
by create, and cannot be shown again. A token acts for one tenant (--tenant) or for every tenant (--admin).
Tokens can also be configured by hash in Ordo:Auth:Tokens; token hash prints the hash of a token.`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newTokenCreateCommand(g), newTokenListCommand(g), newTokenRevokeCommand(g), newTokenHashCommand())
	return cmd
}

// tokenStore opens the configured database for its API tokens.
func tokenStore(cmd *cobra.Command, g *globalFlags, cf configFile) (store.DB, error) {
	cfg, _, err := loadConfig(g, cf.path, false)
	if err != nil {
		return nil, err
	}
	return openConfigured(cmd.Context(), cfg)
}

type tokenView struct {
	ID        string     `json:"id"`
	Tenant    *string    `json:"tenant"`
	Admin     bool       `json:"admin"`
	Name      string     `json:"name"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at"`
	ExpiresAt *time.Time `json:"expires_at"`
}

func viewToken(t driver.APIToken) tokenView {
	v := tokenView{ID: t.ID, Admin: t.Admin, Name: t.Name, CreatedAt: t.CreatedAt.UTC()}
	if !t.Admin {
		tenant := t.TenantID
		v.Tenant = &tenant
	}
	if !t.RevokedAt.IsZero() {
		r := t.RevokedAt.UTC()
		v.RevokedAt = &r
	}
	if !t.ExpiresAt.IsZero() {
		e := t.ExpiresAt.UTC()
		v.ExpiresAt = &e
	}
	return v
}

func newTokenCreateCommand(g *globalFlags) *cobra.Command {
	var cf configFile
	var tenant, name string
	var admin bool
	var expires time.Duration
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a token for one tenant (--tenant T) or an admin token (--admin), and print it once",
		Example: `  ordo token create --tenant acme --name acme-ci
  ordo token create --admin --name ops
  ordo token create --tenant acme --name trial --expires 720h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if admin == (tenant != "") {
				return errors.New("give exactly one of --tenant T or --admin")
			}
			if len(name) > 200 {
				return errors.New("--name: at most 200 characters")
			}
			if expires < 0 {
				return errors.New("--expires: want a positive duration such as 24h, or 0 for never")
			}
			now := time.Now()
			text, rec, err := service.NewToken(tenant, admin, name, now)
			if err != nil {
				return err
			}
			if expires > 0 {
				rec.ExpiresAt = now.Add(expires)
			}
			db, err := tokenStore(cmd, g, cf)
			if err != nil {
				return err
			}
			defer db.Close()
			if err := db.CreateToken(cmd.Context(), rec); err != nil {
				return err
			}
			out := map[string]any{"token": text, "note": "store this token now: it is not kept and cannot be shown again"}
			for k, v := range map[string]any{"id": rec.ID, "tenant": viewToken(rec).Tenant, "admin": rec.Admin, "name": rec.Name, "expires_at": viewToken(rec).ExpiresAt} {
				out[k] = v
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	cf.register(cmd)
	cmd.Flags().StringVar(&tenant, "tenant", "", "the one tenant the token acts for")
	cmd.Flags().BoolVar(&admin, "admin", false, "the token acts for every tenant")
	cmd.Flags().StringVar(&name, "name", "", "what the token is for (shown by token list)")
	cmd.Flags().DurationVar(&expires, "expires", 0, "the token stops working this long from now (0: never)")
	return cmd
}

func newTokenListCommand(g *globalFlags) *cobra.Command {
	var cf configFile
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the tokens in the database (never their text), revoked ones included",
		Example: `  ordo token list --config /etc/ordo/ordo.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := tokenStore(cmd, g, cf)
			if err != nil {
				return err
			}
			defer db.Close()
			toks, err := db.ListTokens(cmd.Context())
			if err != nil {
				return err
			}
			views := make([]tokenView, len(toks))
			for i, t := range toks {
				views[i] = viewToken(t)
			}
			return printJSON(cmd.OutOrStdout(), map[string]any{"tokens": views})
		},
	}
	cf.register(cmd)
	return cmd
}

func newTokenRevokeCommand(g *globalFlags) *cobra.Command {
	var cf configFile
	cmd := &cobra.Command{
		Use:     "revoke TOKEN_ID",
		Short:   "Revoke a token by its id (token list shows them): it stops working at once",
		Example: `  ordo token revoke tok_3f9a1c2e7b4d`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := tokenStore(cmd, g, cf)
			if err != nil {
				return err
			}
			defer db.Close()
			err = db.RevokeToken(cmd.Context(), args[0], time.Now())
			if errors.Is(err, driver.ErrTokenNotFound) {
				return &exitError{code: 1, err: fmt.Errorf("no token with id %q", args[0])}
			}
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), map[string]any{"revoked": args[0]})
		},
	}
	cf.register(cmd)
	return cmd
}

func newTokenHashCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "hash [TOKEN]",
		Short: "Print the SHA-256 of a token (read from stdin without an argument), for Ordo:Auth:Tokens:N:Sha256",
		Example: `  ordo token hash "$ACME_TOKEN"
  printf %s "$ACME_TOKEN" | ordo token hash`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			text := ""
			if len(args) == 1 {
				text = args[0]
			} else {
				line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if err != nil && line == "" {
					return errors.New("no token given: pass it as an argument or on stdin")
				}
				text = strings.TrimRight(line, "\r\n")
			}
			if text == "" {
				return errors.New("empty token")
			}
			fmt.Fprintln(cmd.OutOrStdout(), service.HashToken(text))
			return nil
		},
	}
}
