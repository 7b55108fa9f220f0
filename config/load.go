package config

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"

	"github.com/ordo-sched/ordo/hlc"
)

// Source says what Load reads.
type Source struct {
	// File is the YAML file; "" for none.
	File string
	// Environ is the environment as os.Environ returns it; nil for none.
	// Variables whose name starts with Scheduler__ or Ordo__ (any case)
	// are configuration keys; ORDO_DATABASE_URL sets Ordo:Database:Url.
	Environ []string
	// Defaults are applied first, over the built-in defaults and under
	// the file, the environment and the flags: a mode's own defaults (such
	// as `ordo serve --demo`'s HLC ordering) that the operator may still
	// set otherwise.
	Defaults []Override
	// Overrides are applied last, in order: the command-line flags.
	Overrides []Override
	// Hostname gives the default node id; default os.Hostname.
	Hostname func() (string, error)
	// NodeOptional is for commands that need no node id (migrate, jobs,
	// token): a node id that is neither set nor derivable from the host
	// name is then left empty instead of being a problem. A node id that is
	// set must still be valid.
	NodeOptional bool
}

// Override sets one key from outside the file and the environment.
type Override struct {
	Key    string // canonical, e.g. "Ordo:Database:Url"
	Value  any    // a string, bool, number or []string
	Origin string // for messages, e.g. "flag --db"
}

// EnvDatabaseURL is the short form of Ordo__Database__Url that ordo's CLI
// has always read; Ordo__Database__Url wins when both are set.
const EnvDatabaseURL = "ORDO_DATABASE_URL"

// EnvConfigFile names the configuration file when --config is not given.
const EnvConfigFile = "ORDO_CONFIG"

// ForCLI is the Source of a CLI command: file (else $ORDO_CONFIG), the
// process environment, and the global flags --db and --node when given.
// This is what every command's configuration comes from. Commands that
// need no node id set NodeOptional on the result.
func ForCLI(file, dbFlag, nodeFlag string) Source {
	if file == "" {
		file = os.Getenv(EnvConfigFile)
	}
	src := Source{File: file, Environ: os.Environ()}
	if dbFlag != "" {
		src.Overrides = append(src.Overrides, Override{Key: "Ordo:Database:Url", Value: dbFlag, Origin: "flag --db"})
	}
	if nodeFlag != "" {
		src.Overrides = append(src.Overrides, Override{Key: "Ordo:NodeId", Value: nodeFlag, Origin: "flag --node"})
	}
	return src
}

// Problem is one invalid key or value.
type Problem struct {
	Key    string // canonical, e.g. "Scheduler:Queue:Hlc:MaxClockDriftMs"
	Value  string // as given, strings quoted; empty for a key whose value is beside the point
	Origin string // "file ordo.yaml", "env Scheduler__Queue__Hlc__MaxClockDriftMs", "flag --db", "default", "host name"
	Want   string // what is allowed
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.Key)
	if p.Value != "" {
		b.WriteString(" = ")
		b.WriteString(p.Value)
	}
	if p.Origin != "" {
		fmt.Fprintf(&b, " (%s)", p.Origin)
	}
	b.WriteString(": ")
	b.WriteString(p.Want)
	return b.String()
}

// Error lists every problem Load found. The service does not start with
// any of them.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		return "invalid configuration: " + e.Problems[0].String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "invalid configuration: %d problems:", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// Load reads the configuration from src over the defaults, and validates
// it. Every problem is reported at once in an *Error; a file that cannot
// be read or parsed is reported alone.
func Load(src Source) (*Config, error) {
	k := koanf.New(".")
	origins := map[string]string{}   // lower-case dotted key path -> origin
	spellings := map[string]string{} // lower-case dotted key path -> its last part as written
	var problems []Problem
	cfg := Defaults()

	if err := loadOverrides(k, src.Defaults, origins, spellings); err != nil {
		return nil, fmt.Errorf("configuration defaults: %w", err)
	}
	if src.File != "" {
		b, err := file.Provider(src.File).ReadBytes()
		if err != nil {
			return nil, fmt.Errorf("reading configuration file: %w", err)
		}
		cfg.file, cfg.fileHash = src.File, sha256.Sum256(b)
		m, err := yaml.Parser().Unmarshal(b)
		if err != nil {
			return nil, fmt.Errorf("configuration file %s is not valid YAML: %w", src.File, err)
		}
		origin := "file " + src.File
		lowered := lowerKeys(m, nil, origin, origins, spellings, &problems)
		if err := k.Load(confmap.Provider(lowered, ""), nil); err != nil {
			return nil, fmt.Errorf("configuration file %s: %w", src.File, err)
		}
	}

	env, envProblems := fromEnviron(src.Environ, origins, spellings)
	problems = append(problems, envProblems...)
	if len(env) > 0 {
		if err := k.Load(confmap.Provider(env, "."), nil); err != nil {
			return nil, fmt.Errorf("configuration from the environment: %w", err)
		}
	}

	if err := loadOverrides(k, src.Overrides, origins, spellings); err != nil {
		return nil, fmt.Errorf("configuration from flags: %w", err)
	}

	d := &decoder{origins: origins, spellings: spellings}
	d.problems = problems
	d.decode(cfg, k.Raw())

	nodeGiven := cfg.Ordo.NodeId != ""
	if cfg.Ordo.NodeId == "" {
		hostname := src.Hostname
		if hostname == nil {
			hostname = os.Hostname
		}
		host, err := hostname()
		if err != nil && !src.NodeOptional {
			d.problems = append(d.problems, Problem{Key: "Ordo:NodeId", Origin: "host name",
				Want: fmt.Sprintf("cannot read the host name for the default node id (%v); set Ordo:NodeId or --node", err)})
		} else if err == nil {
			host, _, _ = strings.Cut(host, ".")
			cfg.Ordo.NodeId = host
			origins["ordo.nodeid"] = "host name"
			if src.NodeOptional && hlc.ValidateNodeID(host) != nil {
				cfg.Ordo.NodeId = ""
			}
		}
	}
	semantic := cfg.validate(func(key string) string { return originOf(origins, key) })
	for _, p := range semantic {
		if p.Key == "Ordo:NodeId" && src.NodeOptional && !nodeGiven && cfg.Ordo.NodeId == "" {
			continue
		}
		d.problems = append(d.problems, p)
	}
	if len(d.problems) > 0 {
		return nil, &Error{Problems: d.problems}
	}
	return cfg, nil
}

// loadOverrides loads list into k, each key recorded with its origin.
func loadOverrides(k *koanf.Koanf, list []Override, origins, spellings map[string]string) error {
	if len(list) == 0 {
		return nil
	}
	flat := map[string]any{}
	for _, o := range list {
		key := lowerPath(o.Key)
		flat[key] = o.Value
		origins[key] = o.Origin
		recordSpelling(spellings, strings.Split(strings.ReplaceAll(o.Key, ":", "."), "."))
	}
	return k.Load(confmap.Provider(flat, "."), nil)
}

// lowerPath turns "Ordo:Database:Url" (or "Ordo.Database.Url") into
// "ordo.database.url".
func lowerPath(key string) string {
	return strings.ToLower(strings.ReplaceAll(key, ":", "."))
}

// canonicalPath turns lower-case path parts into a key for messages,
// using the schema's spelling where it knows the parts.
func canonicalPath(parts []string) string { return strings.Join(parts, ":") }

// lowerKeys copies a parsed YAML map with every key lower-cased, records
// each leaf's origin, and reports keys that differ only in case.
func lowerKeys(m map[string]any, path []string, origin string, origins, spellings map[string]string, problems *[]Problem) map[string]any {
	out := make(map[string]any, len(m))
	spelled := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		lk := strings.ToLower(k)
		p := append(append([]string(nil), path...), k)
		if prev, dup := spelled[lk]; dup {
			*problems = append(*problems, Problem{Key: canonicalPath(p), Origin: origin,
				Want: fmt.Sprintf("given twice, also as %q (keys are not case-sensitive)", prev)})
			continue
		}
		spelled[lk] = k
		lp := lowerParts(p)
		recordSpelling(spellings, p)
		v = stringKeys(v)
		if sub, ok := v.(map[string]any); ok {
			origins[strings.Join(lp, ".")] = origin
			out[lk] = lowerKeys(sub, p, origin, origins, spellings, problems)
			continue
		}
		if list, ok := v.([]any); ok {
			items := make([]any, len(list))
			for i, item := range list {
				item = stringKeys(item)
				if sub, ok := item.(map[string]any); ok {
					items[i] = lowerKeys(sub, append(append([]string(nil), p...), fmt.Sprint(i)), origin, origins, spellings, problems)
				} else {
					items[i] = item
				}
			}
			v = items
		}
		origins[strings.Join(lp, ".")] = origin
		out[lk] = v
	}
	return out
}

// stringKeys turns a YAML map with non-string keys (true:, 1:) into one
// with string keys, so that it is reported as an unknown key, not as a
// malformed section.
func stringKeys(v any) any {
	m, ok := v.(map[any]any)
	if !ok {
		return v
	}
	out := make(map[string]any, len(m))
	for k, x := range m {
		out[fmt.Sprint(k)] = x
	}
	return out
}

// recordSpelling notes how each part of a key path was written, for
// messages about keys the schema does not know.
func recordSpelling(spellings map[string]string, parts []string) {
	for i := range parts {
		lp := strings.ToLower(strings.Join(parts[:i+1], "."))
		if _, ok := spellings[lp]; !ok {
			spellings[lp] = parts[i]
		}
	}
}

func lowerParts(p []string) []string {
	out := make([]string, len(p))
	for i, s := range p {
		out[i] = strings.ToLower(s)
	}
	return out
}

// fromEnviron picks the configuration variables out of environ: a flat
// map of lower-case dotted keys.
func fromEnviron(environ []string, origins, spellings map[string]string) (map[string]any, []Problem) {
	flat := map[string]any{}
	var problems []Problem
	var dbURL string
	var haveDBURL bool
	explicitDB := false
	for _, kv := range environ {
		name, value, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if name == EnvDatabaseURL {
			if value != "" {
				dbURL, haveDBURL = value, true
			}
			continue
		}
		upper := strings.ToUpper(name)
		if !strings.HasPrefix(upper, "SCHEDULER__") && !strings.HasPrefix(upper, "ORDO__") {
			continue
		}
		parts := strings.Split(name, "__")
		bad := false
		for _, p := range parts {
			if p == "" || strings.Contains(p, ".") {
				bad = true
			}
		}
		if bad {
			problems = append(problems, Problem{Key: strings.Join(parts, ":"), Origin: "env " + name,
				Want: "not a configuration key: parts must be separated by exactly two underscores and be non-empty"})
			continue
		}
		key := strings.ToLower(strings.Join(parts, "."))
		if key == "ordo.database.url" {
			explicitDB = true
		}
		flat[key] = value
		origins[key] = "env " + name
		recordSpelling(spellings, parts)
	}
	if haveDBURL && !explicitDB {
		flat["ordo.database.url"] = dbURL
		origins["ordo.database.url"] = "env " + EnvDatabaseURL
	}
	return flat, problems
}

// originOf finds where key (canonical or lower dotted) came from: the key
// itself or its nearest ancestor, else the defaults.
func originOf(origins map[string]string, key string) string {
	k := lowerPath(key)
	for {
		if o, ok := origins[k]; ok {
			return o
		}
		i := strings.LastIndexByte(k, '.')
		if i < 0 {
			return "default"
		}
		k = k[:i]
	}
}
