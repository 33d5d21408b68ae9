import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** The JSON error shape every mlops-jupyter endpoint returns. */
interface IErrorBody {
  error?: { status?: number; message?: string };
}

/**
 * Call the mlops-jupyter REST API (`/mlops-jupyter/api/<endPoint>`).
 *
 * ServerConnection adds the token and the XSRF header; errors are raised with the server's
 * message so the panel can show it as text.
 */
export async function requestAPI<T>(endPoint = '', init: RequestInit = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'mlops-jupyter', 'api', endPoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let data: unknown = null;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const message =
      (data as IErrorBody | null)?.error?.message ?? `${response.status} ${response.statusText}`;
    throw new ServerConnection.ResponseError(response, message);
  }
  return data as T;
}
