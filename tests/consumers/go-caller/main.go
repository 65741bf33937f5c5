// Command go-caller is the strict long-running consumer of the controller's `process` Secret
// (tests/e2e/consumers.rs). It loads its configuration the way Terraform's AWS provider and
// S3 backend do, through aws-sdk-go-v2's default chain, so everything comes from the
// environment the test sets: AWS_CONFIG_FILE, AWS_PROFILE, AWS_ENDPOINT_URL_STS and, in one
// case, AWS_SHARED_CREDENTIALS_FILE. With a `credential_process` profile the SDK caches the
// process's credentials and runs it again only once they have expired, so every call after
// the first expiry succeeds only if the mounted file was renewed in time.
//
// With -profiles a,b it loads one configuration per named profile of the same files (as a
// Terraform configuration with two provider aliases does) and calls with each in turn, in one
// process; each line then names its profile (profile=<name>, after n=).
//
// It calls GetCallerIdentity every -every for -for and prints one line per call:
//
//	ok n=<call> t=<seconds since start> key=<access key id> source=<provider> expires=<RFC3339> arn=<caller ARN>
//	error n=<call> t=<seconds> key=<access key id or -> code=<AWS error code> msg=<message>
//
// Access key ids are not secret (AWS prints them in CloudTrail and error messages); secret
// keys and session tokens are never printed. It exits 1 if any call failed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
)

func main() {
	every := flag.Duration("every", 2*time.Second, "time between calls")
	runFor := flag.Duration("for", 90*time.Second, "how long to keep calling")
	profiles := flag.String("profiles", "", "comma-separated profiles to use in turn (default: AWS_PROFILE alone)")
	flag.Parse()

	ctx := context.Background()
	type user struct {
		label  string
		cfg    aws.Config
		client *sts.Client
	}
	var users []user
	names := []string{""}
	if *profiles != "" {
		names = strings.Split(*profiles, ",")
	}
	for _, name := range names {
		// No retries: a single failed call must show, not be hidden by a second attempt.
		opts := []func(*config.LoadOptions) error{config.WithRetryMaxAttempts(1)}
		label := ""
		if name != "" {
			opts = append(opts, config.WithSharedConfigProfile(name))
			label = " profile=" + name
		}
		cfg, err := config.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			fmt.Printf("error n=0 t=0.0%s key=- code=LoadConfig msg=%s\n", label, oneLine(err.Error()))
			os.Exit(2)
		}
		users = append(users, user{label, cfg, sts.NewFromConfig(cfg)})
	}

	start := time.Now()
	ticker := time.NewTicker(*every)
	defer ticker.Stop()
	failed := false
	for n := 1; ; n++ {
		for _, u := range users {
			if !call(ctx, u.cfg, u.client, n, start, u.label) {
				failed = true
			}
		}
		if time.Since(start) >= *runFor {
			break
		}
		<-ticker.C
	}
	if failed {
		os.Exit(1)
	}
}

// call makes one GetCallerIdentity and prints its line; it reports whether it succeeded.
func call(ctx context.Context, cfg aws.Config, client *sts.Client, n int, start time.Time, label string) bool {
	elapsed := time.Since(start).Seconds()
	// The same cache the client signs with: this returns the credentials the call below
	// uses (unless they expire in the microseconds between the two).
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		fmt.Printf("error n=%d%s t=%.1f key=- code=RetrieveCredentials msg=%s\n", n, label, elapsed, oneLine(err.Error()))
		return false
	}
	out, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		code := "Unknown"
		var apiErr smithy.APIError
		if errors.As(err, &apiErr) {
			code = apiErr.ErrorCode()
		}
		fmt.Printf("error n=%d%s t=%.1f key=%s code=%s msg=%s\n", n, label, elapsed, creds.AccessKeyID, code, oneLine(err.Error()))
		return false
	}
	fmt.Printf("ok n=%d%s t=%.1f key=%s source=%s expires=%s arn=%s\n",
		n, label, elapsed, creds.AccessKeyID, creds.Source, creds.Expires.UTC().Format(time.RFC3339), aws.ToString(out.Arn))
	return true
}

// oneLine keeps an error on its line, so the test can parse the output line by line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
