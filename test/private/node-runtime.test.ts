import * as fs from 'fs';
import * as path from 'path';
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { HANDLER_NODE_MAJOR } from '../../projenrc/build';
import {
  BillingPlan, BillingPlans, BillingProvider, DynamoDbBilling, EntitlementAuthorizer, EntitlementPeriod, Entitlements, LibraryFunctionOptions,
  LibraryFunctions, MarketplaceBilling, StripeBilling, UsageApi, UsageIngestor,
} from '../../src';
import { MIN_NODE_MAJOR, newestNodeRuntime, nodeMajorOf } from '../../src/private/node-runtime';
import { testApp } from '../support/synth';

// The runtime of the library's functions: the newest Node.js runtime of the loaded aws-cdk-lib
// (npx projen test:compat checks it on the oldest and the newest aws-cdk-lib), or the `runtime` prop.

/** The newest NODEJS_<n>_X the loaded aws-cdk-lib defines, computed independently of the library. */
function newestDefined(): string {
  const majors = Object.keys(Object.getOwnPropertyDescriptors(lambda.Runtime))
    .map((k) => /^NODEJS_(\d+)_X$/.exec(k)?.[1]).filter((m) => m !== undefined).map(Number);
  return `nodejs${Math.max(...majors)}.x`;
}

/**
 * Every construct of the library that creates functions, with the props it needs: builds it in a
 * new stack with the given options and returns the runtimes of the functions it created.
 */
const CONSTRUCTS: Record<string, (options: LibraryFunctionOptions) => string[]> = {
  UsageIngestor: (options) => {
    const stack = new Stack(testApp('runtime'), 'S');
    new UsageIngestor(stack, 'Ingestor', options);
    return runtimes(stack, 'Ingestor');
  },
  DynamoDbBilling: (options) => {
    const stack = new Stack(testApp('runtime'), 'S');
    new DynamoDbBilling(stack, 'Billing', { ...options, ingestor: new UsageIngestor(stack, 'Ingestor') });
    return runtimes(stack, 'Billing');
  },
  StripeBilling: (options) => {
    const stack = new Stack(testApp('runtime'), 'S');
    const httpApi = new apigwv2.HttpApi(stack, 'Api');
    const billing = new StripeBilling(stack, 'Stripe', {
      ...options,
      apiKey: secretsmanager.Secret.fromSecretNameV2(stack, 'ApiKey', 'stripe/api-key'),
      ingestor: new UsageIngestor(stack, 'Ingestor'),
      httpApi,
      meters: [{ metric: 'apiCalls', eventName: 'api_calls' }],
      prices: ['price_base'],
    });
    new BillingProvider(stack, 'Provider', { billing, httpApi });
    return runtimes(stack, 'Stripe');
  },
  MarketplaceBilling: (options) => {
    const stack = new Stack(testApp('runtime'), 'S');
    new MarketplaceBilling(stack, 'Marketplace', {
      ...options,
      productCode: 'prod-abc123',
      registrationPageUrl: 'https://app.example.com/register',
      ingestor: new UsageIngestor(stack, 'Ingestor'),
      dimensions: [{ metric: 'apiCalls', dimension: 'api_calls' }],
      contractEntitlements: true,
    });
    return runtimes(stack, 'Marketplace');
  },
  UsageApi: (options) => {
    const stack = new Stack(testApp('runtime'), 'S');
    new UsageApi(stack, 'UsageApi', { ...options, ingestor: new UsageIngestor(stack, 'Ingestor'), httpApi: new apigwv2.HttpApi(stack, 'Api') });
    return runtimes(stack, 'UsageApi');
  },
  BillingPlans: (options) => {
    const stack = new Stack(testApp('runtime'), 'S');
    new BillingPlans(stack, 'Plans', { ...options, plans: RUNTIME_PLANS });
    return runtimes(stack, 'Plans');
  },
  Entitlements: (options) => {
    const stack = new Stack(testApp('runtime'), 'S');
    const plans = new BillingPlans(stack, 'Plans', { plans: RUNTIME_PLANS });
    new Entitlements(stack, 'Entitlements', { ...options, ingestor: new UsageIngestor(stack, 'Ingestor'), plans });
    return runtimes(stack, 'Entitlements');
  },
  EntitlementAuthorizer: (options) => {
    const stack = new Stack(testApp('runtime'), 'S');
    const plans = new BillingPlans(stack, 'Plans', { plans: RUNTIME_PLANS });
    const entitlements = new Entitlements(stack, 'Entitlements', { ingestor: new UsageIngestor(stack, 'Ingestor'), plans });
    new EntitlementAuthorizer(stack, 'Authorizer', {
      ...options, entitlements, jwtIssuer: 'https://issuer.example.com', jwtAudience: ['client'], defaultMetric: 'apiCalls',
    });
    return runtimes(stack, 'Authorizer');
  },
};

/** A plan with a limit, for the constructs that need plans. */
const RUNTIME_PLANS: BillingPlan[] = [{ name: 'basic', metrics: [{ metric: 'apiCalls', entitlements: [{ limit: '10', period: EntitlementPeriod.DAY }] }] }];

/** How many functions each creates (with the props above). */
const FUNCTIONS: Record<string, number> = {
  UsageIngestor: 3,
  DynamoDbBilling: 6,
  StripeBilling: 6,
  MarketplaceBilling: 6,
  UsageApi: 1,
  BillingPlans: 1,
  Entitlements: 2,
  EntitlementAuthorizer: 1,
};

/** The runtime of every function whose logical ID starts with `prefix` (the construct's id). */
function runtimes(stack: Stack, prefix: string): string[] {
  return Object.entries(Template.fromStack(stack).findResources('AWS::Lambda::Function'))
    .filter(([id]) => id.startsWith(prefix)).map(([, r]) => r.Properties.Runtime);
}

describe('the default runtime', () => {
  test('is the newest NODEJS_<n>_X the loaded aws-cdk-lib defines, and what LibraryFunctions.newestNodeRuntime() returns', () => {
    expect(newestNodeRuntime().name).toBe(newestDefined());
    expect(LibraryFunctions.newestNodeRuntime().name).toBe(newestDefined());
    expect(nodeMajorOf(newestNodeRuntime().name)).toBeGreaterThanOrEqual(MIN_NODE_MAJOR);
  });

  test('follows a newer runtime of the aws-cdk-lib class, ignoring NODEJS_LATEST and members that are not Node.js runtimes', () => {
    // GIVEN an aws-cdk-lib that knows nodejs26.x (2.278.0 does)
    class NewerRuntime extends lambda.Runtime {
      public static readonly NODEJS_24_X = lambda.Runtime.NODEJS_24_X;
      public static readonly NODEJS_26_X = new lambda.Runtime('nodejs26.x', lambda.RuntimeFamily.NODEJS);
      public static readonly NODEJS_LATEST = new lambda.Runtime('nodejs30.x', lambda.RuntimeFamily.NODEJS);
      public static readonly NODEJS_28_X = new lambda.Runtime('python3.28', lambda.RuntimeFamily.PYTHON);
    }
    // WHEN  THEN
    expect(newestNodeRuntime(NewerRuntime).name).toBe('nodejs26.x');
  });

  test('is nodejs24.x at least, and runtimes the app constructed are not offered ones', () => {
    class OlderRuntime extends lambda.Runtime {
      public static readonly NODEJS_22_X = lambda.Runtime.NODEJS_22_X;
    }
    expect(newestNodeRuntime(OlderRuntime).name).toBe(`nodejs${MIN_NODE_MAJOR}.x`);
    // lambda.Runtime.ALL lists every runtime constructed (cdk-nag's AwsSolutions-L1 reads it); the default does not
    new lambda.Runtime('nodejs99.x', lambda.RuntimeFamily.NODEJS);
    expect(newestNodeRuntime().name).toBe(newestDefined());
  });

  test('the handler bundles are built for the oldest runtime the library accepts', () => {
    // projenrc/build.ts sets esbuild's target; every bundle task must have it
    expect(HANDLER_NODE_MAJOR).toBe(MIN_NODE_MAJOR);
    const tasks = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '.projen', 'tasks.json'), 'utf8')).tasks as
      Record<string, { steps?: Array<{ execArgs?: string[] }> }>;
    const esbuild = Object.entries(tasks).flatMap(([name, t]) => (t.steps ?? [])
      .filter((s) => s.execArgs?.[0] === 'esbuild').map((s) => [name, s.execArgs!.find((a) => a.startsWith('--target='))] as const));
    expect(esbuild.length).toBeGreaterThanOrEqual(15);
    expect(esbuild.filter(([, target]) => target !== `--target=node${MIN_NODE_MAJOR}`)).toEqual([]);
  });
});

describe.each(Object.keys(CONSTRUCTS))('%s', (name) => {
  const build = CONSTRUCTS[name];

  test('every function runs on the newest Node.js runtime of the loaded aws-cdk-lib', () => {
    const found = build({});
    expect(found.length).toBe(FUNCTIONS[name]);
    expect(new Set(found)).toEqual(new Set([newestDefined()]));
  });

  test('every function follows a newer runtime when aws-cdk-lib defines one', () => {
    // GIVEN the loaded aws-cdk-lib extended with NODEJS_26_X, as aws-cdk-lib 2.278.0 has it
    Object.defineProperty(lambda.Runtime, 'NODEJS_26_X', { value: new lambda.Runtime('nodejs26.x', lambda.RuntimeFamily.NODEJS), configurable: true });
    try {
      // WHEN  THEN
      expect(new Set(build({}))).toEqual(new Set(['nodejs26.x']));
    } finally {
      delete (lambda.Runtime as unknown as Record<string, unknown>).NODEJS_26_X;
    }
  });

  test('runtime sets the runtime of every function', () => {
    const runtime = new lambda.Runtime('nodejs26.x', lambda.RuntimeFamily.NODEJS);
    expect(new Set(build({ runtime }))).toEqual(new Set(['nodejs26.x']));
  });

  test('fails if runtime is not a Node.js runtime, or older than nodejs24.x', () => {
    expect(() => build({ runtime: lambda.Runtime.PYTHON_3_13 })).toThrow(new RegExp(
      `${name} at S/\\w+: invalid props:\\n- runtime must be a Node\\.js runtime \\(the library's functions are Node\\.js bundles\\) `
      + `\\(given 'python3\\.13'\\): leave it out for the newest Node\\.js runtime \\(${newestDefined().replace('.', '\\.')} with this aws-cdk-lib\\), `
      + 'or give lambda\\.Runtime\\.NODEJS_24_X or later'));
    expect(() => build({ runtime: lambda.Runtime.NODEJS_22_X }))
      .toThrow(/runtime must be nodejs24\.x or later \(the library's functions are built for Node\.js 24\) \(given 'nodejs22\.x'\)/);
  });
});
