// Package manifests checks what deploy/ runs stripeq with against the
// commands' code: the container image (deploy/Dockerfile), the compose
// stack (deploy/compose.yaml, deploy/.env.example) and the Kubernetes
// manifests (deploy/k8s). It has no code of its own, only tests, which run
// offline with go test:
//
//   - every manifest decodes strictly (unknown fields fail) into the
//     Kubernetes API types;
//   - probe paths and ports are routes and listen addresses the api and the
//     dashboard really serve, read from their source at test time;
//   - every environment variable set in a manifest or in compose is one the
//     command it is given to reads, found by parsing the commands' sources
//     and the pkg/ packages they import;
//   - .env.example lists every variable compose interpolates, with secrets
//     left empty;
//   - the Dockerfile passes hadolint when it is on PATH, and a few strict
//     checks of its own either way;
//   - the configuration table of deploy/README.md names every variable each
//     command reads, and only the commands that read it;
//   - README.md, the front page, stays at most 15 KB, and every relative
//     link of every tracked Markdown file names a file that exists and, with
//     a #fragment, a heading of it.
package manifests
