// Values handed from test/real/global-setup.ts to the real-host tier's test files.
import 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    realHost: {
      /** unix:///…/docker.sock of the test daemon; SSH sessions get it as DOCKER_HOST. */
      dockerHost: string;
      /** DOCKER_CONFIG for the harness's own CLI calls (not the SSH user's ~/.docker). */
      dockerConfig: string;
      /** The registry and its one login; the password goes to `docker login --password-stdin` only. */
      registry: { address: string; username: string; password: string; pid: number };
      /** The VM's record of every docker command its sessions ran (deploy-host.ts, dockerRecorder). */
      commandLog: string;
      /** "127.0.0.1:PORT/engramia/engramia": the API images, tagged by release. */
      apiRepository: string;
      /** The imported Debian base every test image builds FROM (engramia-test/debian-base:HASH). */
      baseImage: string;
      /** The VM's sshd; `home` is the session user's HOME (where `docker login` keeps credentials). */
      sshd: { host: string; port: number; username: string; privateKeyPath: string; hostKeySha256: string; home: string };
    };
  }
}
