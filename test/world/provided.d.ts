// Values handed from test/world/global-setup.ts to test files via `inject('redisUrl')` etc.
import 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    /** redis://127.0.0.1:PORT of the shared redis (appendonly no). Tests must use their own key prefixes / DB. */
    redisUrl: string;
    /** The shared sshd. Sessions get PATH=<test/world/sim/bin>:<node dir>:/usr/local/bin:/usr/bin:/bin. */
    sshd: {
      host: string;
      port: number;
      username: string;
      privateKeyPath: string;
      hostKeySha256: string;
      /** HOME of every SSH session: where the session user's ~/.docker lives. */
      home: string;
    };
  }
}
