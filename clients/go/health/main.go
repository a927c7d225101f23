// Command health calls SpotOn's SystemService.GetHealth with an API key and a deadline, the
// way a Go edge box talks to SpotOn: stubs generated from proto/ (go_package
// github.com/spoton/spoton/gen/go/spoton/v1), the key sent as "authorization: Bearer <key>"
// metadata on every call.
//
//	SPOTON_API_KEY=spk_... go run ./clients/go/health -target 127.0.0.1:50051
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"

	spotonv1 "github.com/spoton/spoton/gen/go/spoton/v1"
)

// bearer adds "authorization: Bearer <key>" to every call on the connection.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity is false so the example also runs against a plaintext local stack;
// use TLS credentials (credentials.NewClientTLSFromFile) anywhere else.
func (bearer) RequireTransportSecurity() bool { return false }

func main() {
	target := flag.String("target", "127.0.0.1:50051", "SpotOn gRPC address")
	timeout := flag.Duration("timeout", 10*time.Second, "deadline of the call")
	flag.Parse()

	conn, err := grpc.Dial(*target,
		grpc.WithInsecure(), // Debian's grpc-go 1.33 predates credentials/insecure
		grpc.WithPerRPCCredentials(bearer(os.Getenv("SPOTON_API_KEY"))))
	if err != nil {
		fmt.Fprintln(os.Stderr, "dial:", err)
		os.Exit(1)
	}
	defer conn.Close()

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	health, err := spotonv1.NewSystemServiceClient(conn).GetHealth(ctx, &spotonv1.GetHealthRequest{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "GetHealth:", err)
		os.Exit(1)
	}
	fmt.Println("status:", health.GetStatus())
	for _, c := range health.GetComponents() {
		fmt.Printf("  %s: %s %s\n", c.GetName(), c.GetStatus(), c.GetDetail())
	}
}
