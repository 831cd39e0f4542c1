import type { Static } from "@sinclair/typebox";

import type * as schemas from "../protocol/schemas.js";

// Every type comes from the server's TypeBox schemas, so a change to a
// method's params or result changes the SDK's types with it. The imports
// are type-only: this module has no runtime dependency.

export type GetParams = Static<typeof schemas.GetParams>;
export type Entry = Static<typeof schemas.Entry>;
export type ListParams = Static<typeof schemas.ListParams>;
export type ListResult = Static<typeof schemas.ListResult>;
export type ListItem = ListResult["items"][number];
export type NamespacesParams = Static<typeof schemas.NamespacesParams>;
export type NamespacesResult = Static<typeof schemas.NamespacesResult>;
export type NamespaceItem = NamespacesResult["items"][number];
export type MgetParams = Static<typeof schemas.MgetParams>;
export type MgetEntry = Static<typeof schemas.MgetEntry>;
export type MgetResult = Static<typeof schemas.MgetResult>;
export type SetParams = Static<typeof schemas.SetParams>;
export type SetResult = Static<typeof schemas.SetResult>;
export type DeleteParams = Static<typeof schemas.DeleteParams>;
export type DeleteResult = Static<typeof schemas.DeleteResult>;
export type BatchParams = Static<typeof schemas.BatchParams>;
export type BatchOperation = BatchParams["operations"][number];
export type BatchResult = Static<typeof schemas.BatchResult>;
export type SubscribeParams = Static<typeof schemas.SubscribeParams>;
export type SubscribeResult = Static<typeof schemas.SubscribeResult>;
export type UnsubscribeParams = Static<typeof schemas.UnsubscribeParams>;
export type UnsubscribeResult = Static<typeof schemas.UnsubscribeResult>;
export type Change = Static<typeof schemas.ChangeNotification>;
