/**
 * Yields every page of a paged method, passing each page's nextCursor back
 * as cursor until it is null.
 */
export async function* paginate<
  Params extends { cursor?: string | null },
  Page extends { nextCursor: string | null },
>(
  fetchPage: (params: Params) => Promise<Page>,
  params: Params,
): AsyncGenerator<Page> {
  let cursor = params.cursor ?? null;
  do {
    const page = await fetchPage({ ...params, cursor });
    yield page;
    cursor = page.nextCursor;
  } while (cursor !== null);
}
