import * as apigw from 'aws-cdk-lib/aws-apigateway';

/**
 * The REST API's root resource, or undefined when it has none to use: an API
 * imported with `RestApi.fromRestApiId` has no root resource (its `root` throws).
 */
export function restRoot(restApi: apigw.IRestApi): apigw.IResource | undefined {
  try {
    const root = restApi.root;
    return typeof root?.resourceForPath === 'function' ? root : undefined;
  } catch {
    return undefined;
  }
}

/** The construct path of the method already on the REST API's resource at this path, if any (without creating resources). */
export function existingRestMethod(root: apigw.IResource, path: string, httpMethod: string): string | undefined {
  let resource: apigw.IResource | undefined = root;
  for (const part of path.split('/').filter((p) => p !== '')) resource = resource?.getResource(part);
  return resource?.node.tryFindChild(httpMethod)?.node.path;
}

/**
 * The URL of a path on the REST API's deployment stage
 * (`https://<id>.execute-api.<region>.<suffix>/<stage><path>`), or undefined when it
 * has none: imported without it, or created with `deploy: false` and no stage set.
 */
export function restUrlForPath(restApi: apigw.IRestApi, path: string): string | undefined {
  const api = restApi as Partial<apigw.RestApiBase>;
  if (typeof api.urlForPath !== 'function') return undefined;
  try {
    return api.urlForPath(path);
  } catch {
    return undefined;
  }
}
