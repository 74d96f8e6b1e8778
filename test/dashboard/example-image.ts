/**
 * `npx projen docs:dashboard`: synthesizes the example app (examples/app.ts),
 * reads the `DashboardBody` of the Stripe example's `BillingDashboard` and draws
 * it as docs/dashboard.svg. test/dashboard/image.test.ts fails when the
 * committed image no longer matches the dashboard's definition.
 */
import * as fs from 'fs';
import * as path from 'path';
import { App, CfnElement } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { CfnTemplate, DashboardBody, dashboardBody } from './dashboard-body';
import { alarmTiles, renderDashboardSvg } from './render-svg';
import { addExampleStacks } from '../../examples/app';
import { StripeBillingStack } from '../../examples/stripe-billing-stack';

/** The committed image. */
export const IMAGE_FILE = path.join(__dirname, '..', '..', 'docs', 'dashboard.svg');

/** The example dashboard, freshly synthesized: its template, its body, and the image drawn from them. */
export interface ExampleDashboard {
  readonly template: CfnTemplate;
  readonly body: DashboardBody;
  readonly svg: string;
}

/** Synthesizes the example app and draws the Stripe example's dashboard. */
export function exampleDashboard(outdir: string): ExampleDashboard {
  // Path metadata names the alarms on their tiles by construct id.
  const app = new App({ outdir, context: { 'aws:cdk:enable-path-metadata': true } });
  const stack = addExampleStacks(app).find((s): s is StripeBillingStack => s instanceof StripeBillingStack);
  if (!stack) throw new Error('examples/app.ts has no StripeBillingStack');
  const template = Template.fromStack(stack).toJSON() as CfnTemplate;
  const body = dashboardBody(template, stack.getLogicalId(stack.dashboard.dashboard.node.defaultChild as CfnElement));
  const caption = `BillingDashboard of the example stack ${stack.stackName} (examples/stripe-billing-stack.ts), drawn from its DashboardBody by `
    + '`npx projen docs:dashboard`: widget positions, titles, metric labels and alarm thresholds as deployed; no data.';
  return { template, body, svg: renderDashboardSvg(body, alarmTiles(template), caption) };
}

if (require.main === module) {
  const outdir = path.join(__dirname, '..', '.out', `dashboard-image-${process.pid}`);
  const { svg } = exampleDashboard(outdir);
  fs.writeFileSync(IMAGE_FILE, svg);
  fs.rmSync(outdir, { recursive: true, force: true });
  console.log(`${path.relative(process.cwd(), IMAGE_FILE)}: ${svg.length} bytes`);
}
