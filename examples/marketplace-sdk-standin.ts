/**
 * A stand-in for `@aws-sdk/client-marketplace-metering` and
 * `@aws-sdk/client-marketplace-entitlement-service`, used only where those packages are not
 * installed yet (they are devDependencies: the Lambda runtime has them, the handler bundles keep
 * `@aws-sdk/*` external). It sends the commands the handlers use over the AWS JSON 1.1 protocol to
 * `AWS_ENDPOINT_URL` (the local Marketplace emulator), unsigned, and throws service errors by their
 * `__type` name as the SDK does. `useMarketplaceSdkStandIn()` installs it for `require()` when the
 * real packages cannot be resolved; once they are installed it does nothing.
 */
// The real module object (an `import * as` namespace would be a copy): its `_load` is replaced below.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const Module = require('module') as { _load: (request: string, parent: unknown, isMain: boolean) => unknown };

class ServiceException extends Error {
  public readonly $metadata: { httpStatusCode: number };
  constructor(name: string, message: string, status: number) {
    super(message);
    this.name = name;
    this.$metadata = { httpStatusCode: status };
  }
}

type Input = Record<string, unknown>;

function toWire(value: unknown): unknown {
  if (value instanceof Date) return value.getTime() / 1000;
  if (Array.isArray(value)) return value.map(toWire);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).map(([k, v]) => [k, toWire(v)]));
  return value;
}

function fromWire(value: unknown, key = ''): unknown {
  if ((key === 'Timestamp' || key === 'ExpirationDate') && typeof value === 'number') return new Date(value * 1000);
  if (Array.isArray(value)) return value.map((v) => fromWire(v));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fromWire(v, k)]));
  return value;
}

class Command {
  constructor(readonly input: Input, readonly target: string) {}
}

class JsonClient {
  constructor(readonly endpointVariable: string, readonly config: Input = {}) {}

  public async send(command: Command): Promise<Record<string, any>> {
    const endpoint = process.env[this.endpointVariable] ?? process.env.AWS_ENDPOINT_URL;
    if (!endpoint) throw new Error('The Marketplace SDK stand-in needs AWS_ENDPOINT_URL (the local emulator)');
    let lastError: unknown;
    // As the SDK: throttling and server errors retried up to `maxAttempts` in all.
    const attempts = Number(this.config.maxAttempts ?? 3);
    for (let attempt = 1; attempt <= attempts; attempt++) {
      let res: Response;
      try {
        res = await fetch(endpoint, {
          method: 'POST',
          headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': command.target },
          body: JSON.stringify(toWire(command.input)),
        });
      } catch (error) {
        // A connection cut (a crash injected after the request) is a network error, as in the SDK.
        lastError = Object.assign(new Error(`request failed: ${(error as Error).message}`), { name: 'NetworkingError', code: 'ECONNRESET' });
        continue;
      }
      const text = await res.text();
      const body = text ? JSON.parse(text) : {};
      if (res.status === 200) return fromWire(body) as Record<string, any>;
      const name = String(body.__type ?? 'UnknownError').split('#').pop()!;
      lastError = new ServiceException(name, String(body.message ?? body.Message ?? name), res.status);
      if (name !== 'ThrottlingException' && res.status < 500) break;
    }
    throw lastError;
  }
}

export const metering = {
  MarketplaceMeteringClient: class extends JsonClient {
    constructor(config?: Input) {
      super('AWS_ENDPOINT_URL_MARKETPLACE_METERING', config);
    }
  },
  BatchMeterUsageCommand: class extends Command {
    constructor(input: Input) {
      super(input, 'AWSMPMeteringService.BatchMeterUsage');
    }
  },
  ResolveCustomerCommand: class extends Command {
    constructor(input: Input) {
      super(input, 'AWSMPMeteringService.ResolveCustomer');
    }
  },
};

export const entitlement = {
  MarketplaceEntitlementServiceClient: class extends JsonClient {
    constructor(config?: Input) {
      super('AWS_ENDPOINT_URL_MARKETPLACE_ENTITLEMENT_SERVICE', config);
    }
  },
  GetEntitlementsCommand: class extends Command {
    constructor(input: Input) {
      super(input, 'AWSMPEntitlementService.GetEntitlements');
    }
  },
};

/** The modules the stand-in replaces. */
export const STAND_IN_MODULES: Record<string, unknown> = {
  '@aws-sdk/client-marketplace-metering': metering,
  '@aws-sdk/client-marketplace-entitlement-service': entitlement,
};

/** Whether the real SDK package can be resolved. */
export function hasRealPackage(name: string): boolean {
  try {
    require.resolve(name);
    return true;
  } catch {
    return false;
  }
}

let installed = false;

/** Lets `require()` of the Marketplace SDK packages find the stand-in when they are not installed (Node.js, ts-node). */
export function useMarketplaceSdkStandIn(): void {
  if (installed) return;
  installed = true;
  const missing = Object.keys(STAND_IN_MODULES).filter((name) => !hasRealPackage(name));
  if (missing.length === 0) return;
  const m = Module;
  const load = m._load;
  m._load = function (request: string, parent: unknown, isMain: boolean) {
    if (missing.includes(request)) return STAND_IN_MODULES[request];
    return load.call(this, request, parent, isMain);
  };
}
