//! Futex keys: what names the futex word at a user address, so that
//! waiters and wakers meet. Linux's `get_futex_key` (`kernel/futex/core.c`
//! in 6.1): a private futex is named by its address space and address; a
//! shared one by the memory it lives in (the backing object and the byte
//! offset in it), so that the same shared page mapped at different
//! addresses, in different spaces, after fork, gives one key.

use super::varea::Backing;
use super::{object_index, AddressSpace, MmEnv};
use crate::addr::{VirtAddr, PAGE_SIZE};
use crate::errno::Errno;

/// The name of a futex word. Keys are plain numbers: they stay valid (and
/// name nothing else) after the space or object they came from is gone,
/// as their ids are never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FutexKey {
    /// A private futex: the address space ([`AddressSpace::id`]) and the
    /// user address.
    Private {
        /// The space's id.
        space: u64,
        /// The address of the word.
        addr: u64,
    },
    /// A shared futex: the memory object
    /// ([`FileObject::id`](crate::object::FileObject::id)) and the byte
    /// offset of the word in it.
    Shared {
        /// The object's id.
        object: u64,
        /// The byte offset in the object.
        offset: u64,
    },
}

impl<E: MmEnv> AddressSpace<'_, E> {
    /// The key of the futex word at `addr`: EINVAL unless 4-byte aligned,
    /// EFAULT outside every varea. With `private` (FUTEX_PRIVATE_FLAG), or
    /// in a private or device mapping, the key is this space and `addr`;
    /// in a shared mapping (of a file, or shared anonymous memory), the
    /// mapped object and the offset in it.
    pub fn futex_key(&self, addr: VirtAddr, private: bool) -> Result<FutexKey, Errno> {
        if !addr.as_u64().is_multiple_of(4) {
            return Err(Errno::EINVAL);
        }
        let (start, varea) = self.vareas.find(addr).ok_or(Errno::EFAULT)?;
        let private_key = FutexKey::Private { space: self.id, addr: addr.as_u64() };
        if private {
            return Ok(private_key);
        }
        match &varea.backing {
            Backing::Object { object, first_page, shared: true } => {
                let page = object_index(*first_page, start, addr.align_down(PAGE_SIZE));
                Ok(FutexKey::Shared { object: object.id(), offset: page * PAGE_SIZE + addr.page_offset() })
            }
            Backing::Anon | Backing::Object { shared: false, .. } | Backing::Device { .. } => Ok(private_key),
        }
    }
}
